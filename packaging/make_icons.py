"""Render LossLab's SVG icon (resources/icons/losslab.svg) into the freedesktop hicolor sizes.

Run after changing the SVG: ``.venv/bin/python packaging/make_icons.py``; the PNGs are committed
under packaging/linux/icons/ and installed by packaging/linux/install.sh. Qt's SVG renderer (a
LossLab dependency already) draws them, so no image tool is needed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "losslab.svg"
OUT = ROOT / "packaging" / "linux" / "icons" / "hicolor"
APP_ID = "org.losslab.LossLab"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(renderer: QSvgRenderer, size: int, path: Path) -> None:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        raise OSError(f"{path}: could not write the icon")


def main() -> int:
    QGuiApplication.instance() or QGuiApplication(sys.argv[:1] + ["-platform", "offscreen"])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG}: not a valid SVG")
    for size in SIZES:
        render(renderer, size, OUT / f"{size}x{size}" / "apps" / f"{APP_ID}.png")
    scalable = OUT / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SVG, scalable)
    print(f"icons written under {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
