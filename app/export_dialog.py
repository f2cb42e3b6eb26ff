"""One export dialog for everything the window can write, with its settings remembered (QSettings).

Pictures (PNG at a chosen size and DPI, optionally transparent; SVG and PDF as vector files)
show the view on screen now: the 3D scene of the 3D, Compare or Workspace tab with its camera,
or the heatmap / 1D plots. The orbit movie turns the 3D camera once (duration x frames, GIF or
MP4, with Cancel). Data exports (interactive HTML scene, VTK, CSV) go through the engine's
``export_surface`` with the display settings now on screen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.errors import ConfigError

if TYPE_CHECKING:
    from app.main_window import MainWindow

# kind -> (label, suffix); pictures and movies show the view, the rest export the surface's data.
KINDS = {
    "png": ("PNG picture of the view", ".png"),
    "svg": ("SVG vector picture of the view", ".svg"),
    "pdf": ("PDF vector picture of the view", ".pdf"),
    "gif": ("Orbit movie (GIF)", ".gif"),
    "mp4": ("Orbit movie (MP4)", ".mp4"),
    "html": ("Interactive 3D scene (HTML, opens in any browser)", ".html"),
    "vts": ("VTK structured grid for ParaView (.vts)", ".vts"),
    "vtp": ("VTK polygon data (.vtp)", ".vtp"),
    "vtk": ("Legacy VTK (.vtk)", ".vtk"),
    "csv": ("CSV table", ".csv"),
}
PICTURES, MOVIES = ("png", "svg", "pdf"), ("gif", "mp4")
SETTINGS_GROUP = "export"


@dataclass(frozen=True)
class ExportSpec:
    """What to write, where, and how (checked by :meth:`check`)."""

    kind: str
    path: Path
    width: int = 1600
    height: int = 1200
    dpi: int = 150
    transparent: bool = False
    duration: float = 6.0  # seconds of movie
    frames: int = 72

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def fps(self) -> int:
        return max(1, round(self.frames / self.duration))

    def check(self) -> ExportSpec:
        where = "export dialog"
        if self.kind not in KINDS:
            raise ConfigError("format", self.kind, f"one of {', '.join(KINDS)}", where)
        if not str(self.path).strip() or self.path.name in ("", "."):
            raise ConfigError("file", str(self.path), "a file name to write", where)
        if not 1 <= self.fps <= 60:
            raise ConfigError("frames / duration", f"{self.frames} / {self.duration} s",
                              "1 to 60 frames per second", where)
        return self

    def with_suffix(self) -> ExportSpec:
        """The same spec with the file name ending in the format's suffix."""
        suffix = KINDS[self.kind][1]
        path = self.path
        if path.suffix.lower() != suffix:
            known = path.suffix.lower() in {s for _label, s in KINDS.values()}
            path = path.with_suffix(suffix) if known else path.with_name(path.name + suffix)
        return dataclasses.replace(self, path=path)


class ExportDialog(QDialog):
    """Choose format, file, size, DPI, background and movie length; remembers them for next time."""

    def __init__(self, suggested_folder: str, stem: str, parent: QWidget | None = None,
                 kind: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setObjectName("export_dialog")
        self.qs = QSettings()
        self.kind = QComboBox()
        for key, (label, _suffix) in KINDS.items():
            self.kind.addItem(label, key)
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(browse)
        self.width_box, self.height_box = (self._spin(64, 8192) for _ in range(2))
        self.dpi = self._spin(36, 1200)
        self.transparent = QCheckBox("Transparent background (PNG)")
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.5, 120.0)
        self.duration.setSuffix(" s")
        self.frames = self._spin(2, 3600)
        form = QFormLayout(self)
        form.addRow("Format", self.kind)
        form.addRow("File", file_row)
        form.addRow("Width (px)", self.width_box)
        form.addRow("Height (px)", self.height_box)
        form.addRow("Resolution (DPI)", self.dpi)
        form.addRow("", self.transparent)
        form.addRow("Movie length", self.duration)
        form.addRow("Movie frames", self.frames)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._load(suggested_folder, stem)
        if kind is not None:
            self.kind.setCurrentIndex(self.kind.findData(kind))
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    @staticmethod
    def _spin(low: int, high: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        return box

    def _value(self, key: str, default):
        value = self.qs.value(f"{SETTINGS_GROUP}/{key}", default)
        return type(default)(value) if not isinstance(default, bool) else value in (True, "true", "1", 1)

    def _load(self, folder: str, stem: str) -> None:
        kind = self._value("kind", "png")
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
        folder = self._value("folder", folder)
        self.path.setText(str(Path(folder) / f"{stem}{KINDS[self.kind.currentData()][1]}"))
        self.width_box.setValue(self._value("width", 1600))
        self.height_box.setValue(self._value("height", 1200))
        self.dpi.setValue(self._value("dpi", 150))
        self.transparent.setChecked(self._value("transparent", False))
        self.duration.setValue(self._value("duration", 6.0))
        self.frames.setValue(self._value("frames", 72))

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        self.path.setText(str(Path(self.path.text()).with_suffix(KINDS[kind][1])))
        sized = kind in ("png", "html", *MOVIES)
        for widget in (self.width_box, self.height_box):
            widget.setEnabled(sized)
        self.dpi.setEnabled(kind == "png")
        self.transparent.setEnabled(kind == "png")
        self.duration.setEnabled(kind in MOVIES)
        self.frames.setEnabled(kind in MOVIES)

    def _browse(self) -> None:
        kind = self.kind.currentData()
        label, suffix = KINDS[kind]
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), f"{label} (*{suffix})")
        if path:
            self.path.setText(path)

    def spec(self) -> ExportSpec:
        """The choices as a checked spec (ConfigError names a wrong field)."""
        return ExportSpec(self.kind.currentData(), Path(self.path.text().strip()), self.width_box.value(),
                          self.height_box.value(), self.dpi.value(), self.transparent.isChecked(),
                          self.duration.value(), self.frames.value()).with_suffix().check()

    def remember(self, spec: ExportSpec) -> None:
        for key, value in (("kind", spec.kind), ("folder", str(spec.path.parent)), ("width", spec.width),
                           ("height", spec.height), ("dpi", spec.dpi), ("transparent", spec.transparent),
                           ("duration", spec.duration), ("frames", spec.frames)):
            self.qs.setValue(f"{SETTINGS_GROUP}/{key}", value)


def ask_export(window: MainWindow, stem: str, kind: str | None = None) -> ExportSpec | None:
    """Show the dialog (``kind`` preselected); the accepted spec (remembered for next time), or None."""
    dialog = ExportDialog(window.settings.last_folder(), stem, window, kind)
    while dialog.exec() == QDialog.DialogCode.Accepted:
        try:
            spec = dialog.spec()
        except ConfigError as exc:
            from app.worker import describe_error

            window.show_error("Cannot export", describe_error(exc))
            continue
        dialog.remember(spec)
        return spec
    return None
