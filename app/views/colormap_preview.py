"""Colour-map previews: a gradient strip beside each name in a colour-map chooser."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QComboBox

STRIP = QSize(64, 14)


def colormap_strip(name: str, size: QSize = STRIP) -> QPixmap:
    """A horizontal gradient of matplotlib's ``name`` (the maps pyvista and the exports use)."""
    import matplotlib

    rgba = (matplotlib.colormaps[name](np.linspace(0.0, 1.0, size.width()))[:, :3] * 255).astype(np.uint8)
    rows = np.ascontiguousarray(np.repeat(rgba[None, :, :], size.height(), axis=0))
    image = QImage(rows.data, size.width(), size.height(), 3 * size.width(), QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # copy: the numpy buffer goes away


def add_previews(combo: QComboBox) -> None:
    """Give every colour-map name in ``combo`` its gradient as the item's icon."""
    combo.setIconSize(STRIP)
    for index in range(combo.count()):
        name = combo.itemText(index)
        try:
            combo.setItemIcon(index, QIcon(colormap_strip(name)))
        except KeyError:  # not a matplotlib map name: leave it without a preview
            continue
