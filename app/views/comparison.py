"""2-4 surfaces side by side with one linked camera and one shared colour scale.

Each panel is titled with its name, test accuracy and generalisation error, so e.g. skip vs
no-skip reads as "flatter surface, smaller gap" at a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from app.display import DisplaySettings
from app.display_data import accuracy_metric, centre_values, color_limits, format_accuracy, z_range
from app.views.camera import AutoFit, apply_camera, release_on_quit, save_screenshot, write_orbit_movie
from app.views.scene import SurfaceScene
from engine.errors import ConfigError
from engine.storage.surface_file import Surface

MAX_PANELS = 4


@dataclass(frozen=True)
class PanelTitle:
    """What a comparison panel says about its surface (accuracies as fractions or percent)."""

    name: str
    test_accuracy: float | None = None
    generalization_error: float | None = None  # train accuracy minus test accuracy
    loss_rise: tuple[str, float, float] | None = None  # (metric, radius, mean rise around the centre)
    curvature: dict[str, float] | None = None  # lambda_max, trace, sharpness from a stored analysis report

    def text(self) -> str:
        parts = [self.name]
        if self.test_accuracy is not None:
            parts.append(f"test acc {format_accuracy(self.test_accuracy)}")
        if self.generalization_error is not None:
            parts.append(f"gen. error {format_accuracy(self.generalization_error)}")
        lines = [parts[0], " · ".join(parts[1:])] if len(parts) > 1 else [parts[0]]
        if self.loss_rise is not None:
            metric, radius, rise = self.loss_rise
            lines.append(f"{metric} rise within {radius:g}: {rise:.3g}")
        if self.curvature is not None:
            c = self.curvature
            lines.append(f"max eig {c['lambda_max']:.3g} · trace {c['trace']:.3g} · sharpness {c['sharpness']:.3g} %")
        return "\n".join(lines)


def title_from_surface(surface: Surface, name: str) -> PanelTitle:
    """Accuracies read at the grid centre (the trained model) when nothing better is known."""
    centre = centre_values(surface)
    test, train = accuracy_metric(surface, "test"), accuracy_metric(surface, "train")
    test_acc = centre[test] if test and "test" in test else None
    gap = centre[train] - centre[test] if test_acc is not None and train and "train" in train else None
    if test_acc is None and test is not None:  # only one accuracy metric, whatever its split
        test_acc = centre[test]
    return PanelTitle(name, test_acc, gap)


class ComparisonView(QWidget):
    """Linked 3D views of 2-4 surfaces; :meth:`shared_limits` is the one colour range used by all."""

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DisplaySettings()
        self.plotter: QtInteractor | None = None
        self.scenes: list[SurfaceScene] = []
        self.titles: list[PanelTitle] = []
        self._title_actors: list[tuple[object, str]] = []
        self.shared_limits = (0.0, 1.0)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def set_surfaces(self, items: Sequence[tuple[Surface, PanelTitle | str]],
                     settings: DisplaySettings | None = None) -> None:
        """Show ``items`` = [(surface, title or name), ...]; a name alone gets accuracies from the surface."""
        if not 2 <= len(items) <= MAX_PANELS:
            raise ConfigError("surfaces to compare", len(items), f"2 to {MAX_PANELS}", "comparison")
        if settings is not None:
            self.settings = settings
        self._make_plotter(len(items))
        self.scenes = [SurfaceScene(self.plotter, (0, k)) for k in range(len(items))]
        self.titles = []
        for scene, (surface, title) in zip(self.scenes, items):
            scene.set_surface(surface, self.settings)
            self.titles.append(title if isinstance(title, PanelTitle) else title_from_surface(surface, title))
        self._rebuild()
        self.plotter.link_views()
        self.set_camera("iso")

    def _make_plotter(self, panels: int) -> None:
        if self.plotter is not None and self.plotter.shape == (1, panels):
            for scene in self.scenes:
                scene.remove_actors()
            return
        if self.plotter is not None:
            self._layout.removeWidget(self.plotter)
            self.plotter.close()
            self.plotter.deleteLater()
        # No auto-update timer: it re-renders 5 times a second even when nothing changed, which
        # under software OpenGL blocks the event loop; the view renders when it changes.
        self.plotter = QtInteractor(self, shape=(1, panels), border=True, border_color="#b0b0b0", auto_update=False)
        release_on_quit(self.plotter)
        self.plotter.set_background("white", top="#dfe6ee", all_renderers=True)
        self._layout.addWidget(self.plotter)
        self._auto_fit = AutoFit(self.plotter, self._fit)
        if self.isVisible():  # take the real size now, so the first camera fit is right
            self._layout.activate()
            self.plotter.show()

    def apply_settings(self, settings: DisplaySettings) -> None:
        self.settings = settings
        if self.scenes:
            camera = self.plotter.camera_position
            self._rebuild()
            self.plotter.camera_position = camera
            self.plotter.render()

    def _rebuild(self) -> None:
        displays = [scene.display_of(self.settings) for scene in self.scenes]
        self.shared_limits = color_limits(displays, self.settings)
        shared_heights = z_range(displays, self.settings)  # one height scale: reliefs compare
        last = len(self.scenes) - 1
        self._title_actors = []
        for k, (scene, title) in enumerate(zip(self.scenes, self.titles)):
            scene.refresh(self.settings, self.shared_limits, shared_heights)
            scene.build(self.settings, self.shared_limits, scalar_bar=k == last)
            self.plotter.subplot(0, k)
            actor = self.plotter.add_text(title.text(), position="upper_edge", font_size=10, color="#202020",
                                          name=f"title-{k}", render=False)
            self._title_actors.append((actor, title.text()))
        self._fit_titles()
        self.plotter.render()

    def _fit_titles(self) -> None:
        """Largest font at which each title's longest line fits its panel (titles scale with the view)."""
        panel_width = max(self.width(), 200) / max(len(self.scenes), 1)
        for actor, text in self._title_actors:
            longest = max(len(line) for line in text.splitlines())
            actor.SetMaximumFontSize(int(min(20, max(8, 0.9 * panel_width / (0.6 * longest)))))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_titles()

    def set_camera(self, preset: str) -> None:
        """'top', 'iso', 'front' or 'reset', for all (linked) panels (ignored until surfaces are shown)."""
        if self.plotter is None:
            return
        self._fit(preset)
        self._auto_fit.preset = preset

    def _fit(self, preset: str) -> None:
        if self.plotter is not None and self.scenes:
            apply_camera(self.plotter, preset, bar_room=0.14 if self.settings.show_scalar_bar else 0.0,
                         top_room=0.14)

    def screenshot(self, path: str | Path, size: tuple[int, int] | None = None) -> Path:
        return save_screenshot(self.plotter, path, size)

    def orbit_movie(self, path: str | Path, frames: int = 72, fps: int = 24,
                    size: tuple[int, int] | None = None,
                    on_frame: Callable[[int, int], None] | None = None) -> Path:
        return write_orbit_movie(self.plotter, path, frames, fps, size, on_frame)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self.plotter is not None:
            self.plotter.close()
        super().closeEvent(event)

