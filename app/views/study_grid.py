"""Any number of surfaces in a scrolled grid: linked cameras, one colour scale, one height scale.

The comparison view (app/views/comparison.py) shows 2-4 surfaces in one row; a study compares
more. This grid reuses its pieces (SurfaceScene, PanelTitle, the display rule's colour and
height ranges, the camera fit) with ``COLUMNS`` panels per row, scrolled vertically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from app.display import DisplaySettings
from app.display_data import color_limits, z_range
from app.views.camera import apply_camera, release_on_quit, save_screenshot
from app.views.comparison import PanelTitle
from app.views.scene import SurfaceScene
from engine.storage.surface_file import Surface

COLUMNS = 3
PANEL_HEIGHT = 330  # pixels per grid row; more rows scroll


def grid_shape(count: int, columns: int = COLUMNS) -> tuple[int, int]:
    cols = max(1, min(columns, count))
    return math.ceil(count / cols), cols


# Corner annotations grow with their viewport; capped, up to four title lines leave the surface room.
TITLE_MAX_FONT = 15
BAR_ROOM = 0.08  # the last panel's colour bar


class StudyGrid(QWidget):
    """``set_surfaces([(surface, PanelTitle), ...])`` draws them all with :attr:`shared_limits`."""

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DisplaySettings()
        self.plotter: QtInteractor | None = None
        self.scenes: list[SurfaceScene] = []
        self.shared_limits = (0.0, 1.0)
        self.shared_heights = (0.0, 1.0)
        self.top_room = 0.18
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.canvas = QWidget()
        self._canvas_layout = QVBoxLayout(self.canvas)
        self._canvas_layout.setContentsMargins(0, 0, 0, 0)
        self.placeholder = QLabel("Select variants in the table and press Compare selected surfaces "
                                  "(none selected: all with a surface).")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._canvas_layout.addWidget(self.placeholder)
        self.scroll.setWidget(self.canvas)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll)

    def set_surfaces(self, items: Sequence[tuple[Surface, PanelTitle]]) -> None:
        rows, cols = grid_shape(len(items))
        self._new_plotter((rows, cols))
        self.canvas.setMinimumHeight(rows * PANEL_HEIGHT)
        self.scenes = [SurfaceScene(self.plotter, divmod(k, cols)) for k in range(len(items))]
        for scene, (surface, _) in zip(self.scenes, items):
            scene.set_surface(surface, self.settings)
        displays = [scene.display_of(self.settings) for scene in self.scenes]
        self.shared_limits = color_limits(displays, self.settings)
        self.shared_heights = z_range(displays, self.settings)
        last = len(self.scenes) - 1
        for k, (scene, (_, title)) in enumerate(zip(self.scenes, items)):
            scene.refresh(self.settings, self.shared_limits, self.shared_heights)
            scene.build(self.settings, self.shared_limits, scalar_bar=k == last)
            self.plotter.subplot(*scene.index)
            text = self.plotter.add_text(title.text(), position="upper_edge", font_size=8, color="#202020",
                                         name=f"title-{k}", render=False)
            text.SetMaximumFontSize(TITLE_MAX_FONT)
        if len(items) > 1:
            self.plotter.link_views()
        self.canvas.updateGeometry()
        lines = max(title.text().count("\n") + 1 for _, title in items)
        self.top_room = min(0.1 + 0.055 * lines, 0.4)
        self.set_camera("iso")
        # The new plotter gets its final size from the next layout pass: fit again after it.
        QTimer.singleShot(0, self._refit)

    def _new_plotter(self, shape: tuple[int, int]) -> None:
        self.placeholder.hide()
        if self.plotter is not None:
            self._canvas_layout.removeWidget(self.plotter)
            self.plotter.close()
            self.plotter.deleteLater()
        # No auto-update timer (see ComparisonView): the grid renders when it changes.
        self.plotter = QtInteractor(self.canvas, shape=shape, border=True, border_color="#b0b0b0",
                                    auto_update=False)
        release_on_quit(self.plotter)
        self.plotter.set_background("white", top="#dfe6ee", all_renderers=True)
        self._canvas_layout.addWidget(self.plotter)

    def _refit(self) -> None:
        if self.plotter is not None:
            self.plotter.render()  # projections use the size of the last render
            self.set_camera("iso")

    def set_camera(self, preset: str) -> None:
        if self.plotter is not None and self.scenes:
            apply_camera(self.plotter, preset, bar_room=BAR_ROOM, top_room=self.top_room)

    def screenshot(self, path, size: tuple[int, int] | None = None):
        return save_screenshot(self.plotter, path, size)

    def close_plotter(self) -> None:
        if self.plotter is not None:
            self.plotter.close()
