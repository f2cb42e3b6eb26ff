"""Several 2D surfaces in one 3D scene: side by side in the α-β plane, or stacked with a height offset.

Every surface uses the same height and colour rule (one colour range over all of them, so equal
colours mean equal losses) and carries a frame in its workspace colour with its name above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvista as pv
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from app.display import DisplaySettings
from app.display_data import color_limits, display_values, fill_for_display, height_map, pick_metric, z_range
from app.views.camera import fit_view, release_on_quit
from engine.storage.surface_file import Surface

LAYOUTS = ("side by side", "stacked")
GAP = 0.25  # space between neighbours, as a share of one surface's width
STACK_GAP = 0.6  # vertical distance between stacked surfaces, in relief heights


@dataclass(frozen=True)
class SceneEntry:
    """One surface to draw: its workspace name and colour."""

    name: str
    surface: Surface
    colour: str


def legend_height(rows: int) -> float:
    """The legend's share of the view's height (the camera leaves it free)."""
    return min(0.055 * rows, 0.4)


def entry_metrics(surfaces: list[Surface], wanted: str) -> list[str]:
    """The metric each surface shows: ``wanted`` where a surface has it; otherwise the first loss
    metric that every surface holds (one quantity on one colour scale), else each surface's own
    first loss metric (e.g. a train-split and a test-split surface side by side)."""
    if not wanted:
        common = [m for m in surfaces[0].values if all(m in s.values for s in surfaces)]
        wanted = next((m for m in common if "loss" in m), "")
    return [pick_metric(s, wanted) for s in surfaces]


class MultiSurfaceView(QWidget):
    """A QtInteractor drawing any number of 2D surfaces together."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plotter = QtInteractor(self, auto_update=False)
        release_on_quit(self.plotter)
        self.plotter.set_background("white", top="#dfe6ee")
        self.entries: list[SceneEntry] = []
        self.layout_name = LAYOUTS[0]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plotter, 1)

    def show_entries(self, entries: list[SceneEntry], settings: DisplaySettings, layout_name: str = "") -> None:
        """Redraw the scene with ``entries`` (2D surfaces only), keeping the camera if the set is unchanged."""
        same = [e.name for e in entries] == [e.name for e in self.entries]
        self.entries, self.layout_name = list(entries), layout_name or self.layout_name
        self.plotter.clear_actors()
        self.plotter.remove_bounds_axes()
        self.plotter.remove_legend(render=False)
        for bar in list(self.plotter.scalar_bars.keys()):
            self.plotter.remove_scalar_bar(bar, render=False)
        if entries:
            self._draw(settings)
            if not same:
                self.fit()
        self.plotter.render()

    def fit(self) -> None:
        """Look from above a corner and fill the view with every surface (room for the colour bar)."""
        if self.entries:
            self.plotter.view_vector((0.25, -1.8, 1.4), viewup=(0, 0, 1))
            fit_view(self.plotter, bar_room=0.14, top_room=legend_height(len(self.entries)))
            self.plotter.render()

    def _draw(self, settings: DisplaySettings) -> None:
        metrics = entry_metrics([e.surface for e in self.entries], settings.metric)
        shown = [fill_for_display(display_values(e.surface.values[m], settings)) for e, m in zip(self.entries, metrics)]
        limits, span = color_limits(shown, settings), z_range(shown, settings)
        mixed = len(set(metrics)) > 1
        label = settings.metric_label("loss" if mixed and all("loss" in m for m in metrics) else metrics[0])
        for k, (entry, values) in enumerate(zip(self.entries, shown)):
            s = entry.surface
            heights = height_map(s.x, s.y, span, settings)
            offset = self._offset(k, s, heights.height)
            xx, yy = np.meshgrid(s.x, s.y)
            z = heights(np.where(np.isfinite(values), values, span[0]))
            grid = pv.StructuredGrid(xx + offset[0], yy + offset[1], z + offset[2])
            grid.point_data[label] = np.where(np.isfinite(values), values, span[0]).ravel(order="F")
            self.plotter.add_mesh(grid, scalars=label, cmap=settings.colormap, clim=limits, smooth_shading=True,
                                  specular=settings.specular, show_scalar_bar=k == 0, render=False,
                                  scalar_bar_args=dict(title=label, vertical=True, position_x=0.87, position_y=0.15,
                                                       height=0.6, width=0.05, color="#202020", fmt="%.3g",
                                                       n_labels=5, title_font_size=13, label_font_size=11))
            self._frame(entry, s, offset, heights.floor)
        self._legend([f"{e.name} ({m})" if mixed else e.name for e, m in zip(self.entries, metrics)])

    def _offset(self, k: int, s: Surface, height: float) -> tuple[float, float, float]:
        """Where surface ``k`` goes: centred on its own slot of the widest surface's width, or
        lifted above the previous one."""
        if self.layout_name == "stacked":
            return 0.0, 0.0, k * (1.0 + STACK_GAP) * height
        step = max(float(np.ptp(e.surface.x)) for e in self.entries) * (1.0 + GAP)
        centre = (float(s.x.min()) + float(s.x.max())) / 2
        return k * step - centre, 0.0, 0.0

    def _frame(self, entry: SceneEntry, s: Surface, offset: tuple[float, float, float], floor: float) -> None:
        """A rectangle in the entry's colour under its surface (the legend names the colours)."""
        x0, x1, y0, y1 = float(s.x.min()), float(s.x.max()), float(s.y.min()), float(s.y.max())
        z = floor + offset[2]
        corners = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z], [x0, y0, z]])
        corners[:, :2] += offset[:2]
        self.plotter.add_mesh(pv.lines_from_points(corners), color=entry.colour, line_width=4, render=False)

    def _legend(self, names: list[str]) -> None:
        """Names in a legend at the top left rather than in the scene, where long names of small
        neighbouring surfaces ran into each other and past the view's edge."""
        rows = [[name, entry.colour] for name, entry in zip(names, self.entries)]
        self.plotter.add_legend(rows, bcolor="white", border=False, size=(0.5, legend_height(len(rows))),
                                loc="upper left", face="rectangle", background_opacity=0.7)

    def close(self) -> bool:
        self.plotter.close()
        return super().close()
