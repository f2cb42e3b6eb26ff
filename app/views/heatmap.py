"""The 2D map of a surface: heatmap, contour lines, colour bar and trajectory, seen from above.

Uncomputed points are transparent over a grey background, so a surface that is still being
filled shows exactly which points exist. Same :class:`DisplaySettings` as the 3D view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from app.display import DisplaySettings
from app.display_data import (
    Probe,
    color_limits,
    contour_levels,
    contour_lines,
    display_values,
    fill_for_display,
    pick_metric,
    probe,
)
from app.views.elided_label import ElidedLabel
from engine.errors import ConfigError
from engine.storage.surface_file import Surface

PENDING_GREY = "#c4c4c4"


def colormap(name: str) -> pg.ColorMap:
    """A matplotlib colour map by name, as pyqtgraph uses it (same names as the 3D view)."""
    return pg.colormap.get(name, source="matplotlib")


def _joined(segments: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Polylines as one x, y pair with NaN breaks, drawn by a single item."""
    if not segments:
        return np.empty(0), np.empty(0)
    parts = [np.vstack([s, [np.nan, np.nan]]) for s in segments]
    joined = np.vstack(parts)
    return joined[:, 0], joined[:, 1]


class HeatmapView(QWidget):
    """Heatmap + contours of one 2D surface; emits :attr:`hovered` with the point under the mouse."""

    hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DisplaySettings()
        self.surface: Surface | None = None  # the view's own copy
        self.metric_name = ""  # not "metric": that would shadow QWidget.metric()
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plot = self.graphics.addPlot()
        self.plot.setLabel("bottom", "α")
        self.plot.setLabel("left", "β")
        for side in ("bottom", "left"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.setAspectLocked(True)
        # Grey under the grid only: uncomputed points are transparent and show it through.
        self.pending = QGraphicsRectItem()
        self.pending.setBrush(QBrush(QColor(PENDING_GREY)))
        self.pending.setPen(QPen(Qt.PenStyle.NoPen))
        self.image = pg.ImageItem(axisOrder="row-major")
        for item in (self.pending, self.image):
            self.plot.addItem(item)
        self.contours = pg.PlotDataItem(pen=pg.mkPen("#202020", width=1.2), connect="finite")
        self.path = pg.PlotDataItem(pen=pg.mkPen("#e8202a", width=2.5), symbol="o", symbolSize=6,
                                    symbolBrush="#e8202a", symbolPen=None)
        for item in (self.contours, self.path):
            self.plot.addItem(item)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap(self.settings.colormap),
                                   interactive=False, colorMapMenu=False)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.info = ElidedLabel("Open or compute a 2D surface to see its map here.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.info)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_move)

    def set_surface(self, surface: Surface, settings: DisplaySettings | None = None) -> None:
        if surface.y is None:
            raise ConfigError("surface", "1D", "a 2D surface (use the curve view for 1D ones)",
                              str(getattr(surface, "path", "") or "surface"))
        if settings is not None:
            self.settings = settings
        self.surface = surface.copy()
        self._redraw()
        x, y = self.surface.x, self.surface.y
        self.plot.setRange(xRange=(x.min(), x.max()), yRange=(y.min(), y.max()), padding=0.02)

    def update_values(self, values: dict[str, np.ndarray]) -> None:
        """New metric arrays for the same grid (more points computed)."""
        if self.surface is None:
            raise ConfigError("surface", None, "a surface shown before its values are updated", "heatmap")
        self.surface.update_values(values)
        self._redraw()

    def apply_settings(self, settings: DisplaySettings) -> None:
        self.settings = settings
        if self.surface is not None:
            self._redraw()

    def color_limits(self) -> tuple[float, float]:
        if self.surface is None:
            return 0.0, 1.0
        shown = display_values(self.surface.values[self.metric_name], self.settings)
        return color_limits([shown], self.settings)

    def _redraw(self) -> None:
        s, settings = self.surface, self.settings
        self.metric_name = pick_metric(s, settings.metric)
        shown = display_values(s.values[self.metric_name], settings)
        if settings.fill_holes:
            shown = fill_for_display(shown)
        limits = self.color_limits()
        self.image.setImage(shown, autoLevels=False)
        self.image.setRect(_cell_rect(s.x, s.y))
        self.pending.setRect(_cell_rect(s.x, s.y))
        self.bar.setColorMap(colormap(settings.colormap))
        self.bar.setLevels(limits)
        self.bar.getAxis("right").setLabel(settings.metric_label(self.metric_name))
        levels = contour_levels(settings, *limits)
        segments = [seg for _, segs in contour_lines(s.x, s.y, shown, levels) for seg in segs]
        self.contours.setData(*_joined(segments))
        path = s.trajectory if settings.show_trajectory and s.trajectory is not None else np.empty((0, 2))
        self.path.setData(path[:, 0], path[:, 1])
        done = int(np.isfinite(s.values[self.metric_name]).sum())
        self.info.setText(f"{self.metric_name}: {done} of {shown.size} points computed (grey = pending).")

    def probe_at(self, alpha: float, beta: float) -> Probe | None:
        """The grid point nearest (α, β) if it lies on the grid, else None."""
        s = self.surface
        if s is None or not (s.x.min() <= alpha <= s.x.max() and s.y.min() <= beta <= s.y.max()):
            return None
        return probe(s, alpha, beta)

    def _on_mouse_move(self, pos: QPointF) -> None:
        if not self.plot.sceneBoundingRect().contains(pos):
            return
        point = self.plot.getViewBox().mapSceneToView(pos)
        found = self.probe_at(point.x(), point.y())
        if found is not None:
            self.info.setText(found.describe())
        self.hovered.emit(found)


def _cell_rect(x: np.ndarray, y: np.ndarray) -> QRectF:
    """Image extent with each pixel centred on its grid point (grids are evenly spaced)."""
    dx = (x.max() - x.min()) / (len(x) - 1) if len(x) > 1 else 1.0
    dy = (y.max() - y.min()) / (len(y) - 1) if len(y) > 1 else 1.0
    return QRectF(x.min() - dx / 2, y.min() - dy / 2, dx * len(x), dy * len(y))
