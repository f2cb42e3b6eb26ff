"""The central views: 3D surface, heatmap, 1D curves and comparison, fed one surface at a time.

2D surfaces go to the 3D and heatmap views, 1D curves to the curve view. A running job's
:class:`~app.live_surface.LiveSurface` is shown as soon as its first points arrive and then
updated in place. The display controls (a dock of the main window) drive every view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from app.display import DisplaySettings
from app.display_data import pick_metric
from app.live_surface import LiveSurface
from app.views.comparison import ComparisonView, PanelTitle
from app.views.controls import DisplayControls
from app.views.curve_1d import Curve1DView
from app.views.heatmap import HeatmapView
from app.views.surface_3d import Surface3DView
from engine.errors import LossLabError
from engine.storage.surface_file import Surface, load_surface


def surface_name(surface: Surface) -> str:
    return Path(str(getattr(surface, "path", "") or "surface")).stem


def compare_title(surface: Surface) -> PanelTitle | str:
    """Title a comparison panel with the run's own test accuracy and generalisation error at the
    surface's checkpoint; without a readable run file, the view reads them off the surface."""
    from engine.storage.run import load_run

    attrs = surface.attrs
    # The run's name is what tells panels apart; the surface file name repeats the grid settings.
    name = Path(str(attrs.get("run_file", ""))).stem or surface_name(surface)
    rise, curvature = loss_rise(surface), stored_curvature(surface)
    try:
        metrics = load_run(attrs["run_file"]).metrics
        epoch = int(attrs["checkpoint_epoch"])
        return PanelTitle(name, float(metrics["test_acc"][epoch]), float(metrics["gen_error"][epoch]), rise,
                          curvature)
    except (KeyError, IndexError, ValueError, LossLabError):
        return PanelTitle(name, loss_rise=rise, curvature=curvature) if rise or curvature else name


def stored_curvature(surface: Surface) -> dict[str, float] | None:
    """lambda_max, trace and sharpness of the surface's checkpoint, if the Analysis panel (or
    ``losslab flatness``) stored a report next to its run file."""
    from engine.analysis.report import cached_headline

    try:
        return cached_headline(surface.attrs["run_file"], int(surface.attrs["checkpoint_epoch"]))
    except (KeyError, TypeError, ValueError):
        return None


def loss_rise(surface: Surface, radius: float = 0.5) -> tuple[str, float, float] | None:
    """How much the loss rises around the minimum (the bias-landscape study's sharpness question), for titles."""
    from engine.analysis.flatness import surface_flatness, surface_metric

    metric = surface_metric(surface, None, "test")  # the rule losslab flatness and studies use
    if not metric.endswith("_loss"):
        return None
    try:
        rise = surface_flatness(surface, metric, radius)["mean_rise"]
    except LossLabError:
        return None
    return (metric, radius, rise) if np.isfinite(rise) else None


# A software-GL render of the 3D view takes 0.1-0.5 s and blocks the event loop, so live points
# are drawn at most this often, and only in the visible tab (others catch up when shown).
LIVE_REDRAW_MS = 2000
# A loss spanning more than this ratio (max / min) opens in log scale, unless the user chose linear.
AUTO_LOG_RATIO = 100.0


class ViewArea(QTabWidget):
    TABS = ("3D surface", "Heatmap", "1D curves", "Compare")
    surface_shown = Signal(object)  # the Surface now shown (the Analysis panel's overlays follow it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view_area")
        self.settings = DisplaySettings()
        self.surface: Surface | None = None  # what is shown now (complete file or live job)
        self.live: LiveSurface | None = None
        self.view3d = Surface3DView(settings=self.settings)
        self.heatmap = HeatmapView(settings=self.settings)
        self.curves = Curve1DView(settings=self.settings)
        self.compare = ComparisonView(settings=self.settings)
        views = (self.view3d, self.heatmap, self.curves, self.compare)
        for title, view in zip(self.TABS, views, strict=True):
            self.addTab(view, title)
        self.controls = DisplayControls(settings=self.settings)
        self.controls.changed.connect(self.apply_settings)
        self.controls.camera_requested.connect(self.set_camera)
        self._stale: set[QWidget] = set()  # views that missed live points while hidden
        self._user_chose_linear = False
        self._user_set_fill = False
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(LIVE_REDRAW_MS)
        self._redraw.timeout.connect(self._draw_live_points)
        self.currentChanged.connect(self._catch_up)

    @property
    def is_2d(self) -> bool:
        return self.surface is not None and self.surface.y is not None

    def _views(self) -> list[QWidget]:
        return [self.view3d, self.heatmap] if self.is_2d else [self.curves]

    # -- content ----------------------------------------------------------------------
    def show_surface(self, surface: Surface) -> None:
        """Show a surface in the views that fit it (2D: 3D + heatmap; 1D: curves)."""
        self.surface = surface
        self._forget_foreign_metric(surface)
        self._maybe_log_scale(surface)
        if self.is_2d:
            self.view3d.set_surface(surface, self.settings)
            self.heatmap.set_surface(surface, self.settings)
        else:
            self.curves.set_surface(surface, surface_name(surface))
            self.curves.apply_settings(self.settings)
        self.controls.set_surface(surface)
        self.setTabEnabled(0, self.is_2d)
        self.setTabEnabled(1, self.is_2d)
        self.setTabEnabled(2, not self.is_2d)
        if not self.isTabEnabled(self.currentIndex()) or self.currentIndex() == 3:
            self.setCurrentIndex(0 if self.is_2d else 2)
        self.surface_shown.emit(surface)

    def show_surface_file(self, path: str | Path) -> Surface:
        surface = load_surface(path)
        self.live = None
        self._redraw.stop()
        self._stale.clear()
        self.show_surface(surface)
        return surface

    def begin_live_surface(self, live: LiveSurface) -> None:
        """A job starts: its coarse-to-fine points are previewed with display-only interpolation
        (pending points stay marked and are never written), unless the user turned that off."""
        self.live = live
        if not self._user_set_fill and not self.settings.fill_holes:
            self.settings = self.settings.replace(fill_holes=True)
            self.controls.set_settings(self.settings, emit=False)

    def update_live_surface(self, live: LiveSurface) -> None:
        """New points of the running job: the first batch sets the surface up, later ones edit it."""
        if live is not self.live or not live.has_points:
            return
        if self.surface is not live.surface:
            self.show_surface(live.surface)
            return
        if not self._redraw.isActive():
            self._redraw.start()

    def _draw_live_points(self) -> None:
        if self.live is None or self.surface is not self.live.surface:
            return
        values = self._live_values()
        for view in self._views():
            if view is self.currentWidget():
                view.update_values(values)
            else:
                self._stale.add(view)

    def _live_values(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.live.surface.values.items()}

    def _catch_up(self, index: int) -> None:
        view = self.widget(index)
        if view in self._stale and self.live is not None and self.surface is self.live.surface:
            view.update_values(self._live_values())
        self._stale.discard(view)

    def current_metric(self) -> str:
        """The metric drawn now (the display setting, else the surface's first loss)."""
        if self.surface is None:
            return self.settings.metric
        return pick_metric(self.surface, self.settings.metric)

    def _forget_foreign_metric(self, surface: Surface) -> None:
        """A metric chosen for another surface does not follow to one without it: this one opens
        with its own default metric (and the Metric box says so)."""
        if self.settings.metric and self.settings.metric not in surface.values:
            self.settings = self.settings.replace(metric="")
            self.controls.set_settings(self.settings, emit=False)

    def compare_files(self, paths: list[str | Path]) -> None:
        """2 to 4 surface files side by side with linked cameras and one colour scale."""
        if not 2 <= len(paths) <= 4:
            raise LossLabError(f"Compare shows 2 to 4 surfaces side by side; {len(paths)} "
                               f"{'was' if len(paths) == 1 else 'were'} chosen. Select 2 to 4 surface files.")
        surfaces = [load_surface(p) for p in paths]
        self._maybe_log_scale(surfaces[0])
        self.compare.set_surfaces([(s, compare_title(s)) for s in surfaces], self.settings)
        self.setCurrentIndex(self.TABS.index("Compare"))

    def _maybe_log_scale(self, surface: Surface) -> None:
        """Losses that span orders of magnitude are unreadable linearly (a flat basin and a few
        cliffs), so such surfaces open in log scale, as the visualisation thesis (Anuarbekov 2021) plots them."""
        if self.settings.log_scale or self._user_chose_linear or not surface.values:
            return
        metric = pick_metric(surface, self.settings.metric if self.settings.metric in surface.values else "")
        values = np.asarray(surface.values[metric], dtype=float)
        finite = values[np.isfinite(values) & (values > 0)]
        if "loss" in metric and finite.size and finite.max() > AUTO_LOG_RATIO * finite.min():
            self.settings = self.settings.replace(log_scale=True)
            self.controls.set_settings(self.settings, emit=False)

    # -- display ------------------------------------------------------------------------
    def apply_settings(self, settings: DisplaySettings) -> None:
        if self.settings.log_scale and not settings.log_scale:
            self._user_chose_linear = True
        if settings.fill_holes != self.settings.fill_holes:
            self._user_set_fill = True
        self.settings = settings
        if self.surface is not None:
            for view in self._views():
                view.apply_settings(settings)
        self.compare.apply_settings(settings)

    def set_camera(self, preset: str) -> None:
        self.view3d.set_camera(preset)
        if self.compare.scenes:
            self.compare.set_camera(preset)

    def close(self) -> bool:
        for view in (self.view3d, self.compare):
            view.close()
        return super().close()
