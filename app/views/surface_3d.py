"""The 3D surface view: a pyvistaqt QtInteractor showing one surface, live-updatable.

Usage::

    view = Surface3DView()
    view.set_surface(surface)                 # engine Surface (a copy is kept)
    view.update_values({"train_loss": arr})   # new points from a running job: in place
    view.apply_settings(settings)             # DisplaySettings from the controls panel
    view.set_camera("top"); view.screenshot("shot.png", (1600, 1200))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyvista as pv
from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from vtkmodules.vtkRenderingCore import vtkCellPicker

from app.display import DisplaySettings
from app.display_data import Probe, color_limits, probe, z_range
from app.views.camera import AutoFit, apply_camera, release_on_quit, save_screenshot, write_orbit_movie
from app.views.elided_label import ElidedLabel
from app.views.scene import SurfaceScene
from engine.errors import ConfigError
from engine.storage.surface_file import Surface


class Surface3DView(QWidget):
    """One surface in 3D; emits :attr:`hovered` with the grid point under the mouse (or None)."""

    hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DisplaySettings()
        # auto_update=False: render on change only (a 5 fps timer stalls the UI under software GL).
        self.plotter = QtInteractor(self, auto_update=False)
        release_on_quit(self.plotter)
        self.plotter.set_background("white", top="#dfe6ee")
        self.scene = SurfaceScene(self.plotter)
        self.info = ElidedLabel("Open or compute a surface to see it here.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plotter, 1)
        layout.addWidget(self.info)
        self._picker = vtkCellPicker()
        self._picker.SetTolerance(0.0005)
        self._picker.PickFromListOn()
        self.plotter.iren.add_observer("MouseMoveEvent", self._on_mouse_move)
        self._auto_fit = AutoFit(self.plotter, self._fit)
        self.overlay: tuple[np.ndarray, str, tuple[float, float], str] | None = None

    # ---- content ----------------------------------------------------------------------
    @property
    def has_surface(self) -> bool:
        return self.scene.surface is not None

    def set_surface(self, surface: Surface, settings: DisplaySettings | None = None) -> None:
        """Show ``surface`` (a copy is kept); the camera is reset to the iso preset."""
        if settings is not None:
            self.settings = settings
        self.scene.set_surface(surface, self.settings)
        self._rebuild()
        self.set_camera("iso")
        self.info.setText(self._summary())

    def update_values(self, values: dict[str, np.ndarray]) -> None:
        """New metric arrays for the same grid (e.g. more points computed): meshes edited in place."""
        if not self.has_surface:
            raise ConfigError("surface", None, "a surface shown before its values are updated", "3D view")
        self.scene.set_values(values)
        limits = self.color_limits()
        self.scene.refresh(self.settings, limits, self.z_range())
        self.scene.set_limits(limits)
        self.plotter.render()
        self.info.setText(self._summary())

    def apply_settings(self, settings: DisplaySettings) -> None:
        """Redraw with new display settings, keeping the camera where the user left it."""
        self.settings = settings
        if self.has_surface:
            camera = self.plotter.camera_position
            self._rebuild()
            self.plotter.camera_position = camera
            self.plotter.render()
            self.info.setText(self._summary())  # the metric may have changed

    def set_color_overlay(self, overlay: tuple[np.ndarray, str, tuple[float, float], str] | None) -> None:
        """Colour the relief by ``(values [j, i], colour map, (low, high), title)``, or by the metric (None)."""
        self.overlay = overlay
        if self.has_surface:
            camera = self.plotter.camera_position
            self._rebuild()
            self.plotter.camera_position = camera
            self.plotter.render()

    def color_limits(self) -> tuple[float, float]:
        """The colour range in display units (fixed in settings, else the data's min/max)."""
        return color_limits([self.scene.display_of(self.settings)], self.settings)

    def z_range(self) -> tuple[float, float]:
        """The drawn values' range in display units (sets the heights; never the fixed colour range)."""
        return z_range([self.scene.display_of(self.settings)], self.settings)

    def _rebuild(self) -> None:
        limits = self.color_limits()
        self.scene.refresh(self.settings, limits, self.z_range())
        self.scene.build(self.settings, limits, scalar_bar=True)
        if self.overlay is not None:  # colours from another grid array (the Analysis panel's convexity map)
            self.scene.color_by(*self.overlay)
        self._picker.InitializePickList()
        self._picker.AddPickList(self.scene.actors["relief"])
        self.plotter.render()

    @property
    def drawn_cells(self) -> int:
        """Number of grid cells drawn (cells with an uncomputed corner are holes)."""
        return self.scene.relief.n_cells if self.has_surface else 0

    def _summary(self) -> str:
        values = self.scene.surface.values[self.scene.metric]
        done, total = int(np.isfinite(values).sum()), values.size
        state = "all points computed" if done == total else f"{done} of {total} points computed"
        return f"{self.scene.metric}: {state}. Hover over the surface to read values."

    # ---- camera and files -------------------------------------------------------------
    def set_camera(self, preset: str) -> None:
        """'top', 'iso', 'front' or 'reset' (iso, zoomed to fit)."""
        self._fit(preset)
        self._auto_fit.preset = preset

    def _fit(self, preset: str) -> None:
        apply_camera(self.plotter, preset, bar_room=0.12 if self.settings.show_scalar_bar else 0.0)

    def screenshot(self, path: str | Path, size: tuple[int, int] | None = None) -> Path:
        """Save the 3D view as PNG/JPEG at ``size`` = (width, height) pixels (default: as shown)."""
        return save_screenshot(self.plotter, path, size)

    def orbit_movie(self, path: str | Path, frames: int = 72, fps: int = 24,
                    size: tuple[int, int] | None = None,
                    on_frame: Callable[[int, int], None] | None = None) -> Path:
        """One turn around the surface, written as .gif or .mp4; the camera is restored after."""
        return write_orbit_movie(self.plotter, path, frames, fps, size, on_frame)

    # ---- hover ------------------------------------------------------------------------
    def probe_at(self, x: int, y: int) -> Probe | None:
        """The grid point under display pixel (x, y) (VTK coordinates: origin bottom left)."""
        if not self.has_surface or "relief" not in self.scene.actors:
            return None
        if not self._picker.Pick(x, y, 0, self.plotter.renderer) or self._picker.GetCellId() < 0:
            return None
        alpha, beta, _ = self._picker.GetPickPosition()
        return probe(self.scene.surface, alpha, beta)

    def _on_mouse_move(self, *_: object) -> None:
        x, y = self.plotter.iren.get_event_position()
        found = self.probe_at(x, y)
        if found is not None:
            self.info.setText(found.describe())
        self._mark(found)
        self.hovered.emit(found)

    def _mark(self, found: Probe | None) -> None:
        """A red dot on the relief at the hovered grid point; redrawn only when that point changes."""
        index = None if found is None else found.index
        if index == getattr(self, "_marked", None):
            return
        self._marked = index
        relief = getattr(self.scene, "relief", None)
        if index is None or relief is None:
            if getattr(self, "_marker", None) is not None:
                self._marker.SetVisibility(False)
                self.plotter.render()
            return
        j, i = index
        point = np.asarray(relief.points[j * len(self.scene.surface.x) + i], dtype=float)[None, :]
        if getattr(self, "_marker", None) is None or self._marker not in self.plotter.renderer.actors.values():
            self._marker_mesh = pv.PolyData(point)
            self._marker = self.plotter.add_mesh(self._marker_mesh, color="#e8202a", point_size=14,
                                                 render_points_as_spheres=True, pickable=False,
                                                 show_scalar_bar=False, render=False)
        self._marker_mesh.points = point
        self._marker.SetVisibility(True)
        self.plotter.render()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.plotter.close()  # releases the GL context before Qt tears the window down
        super().closeEvent(event)
