"""Camera presets, screenshots and orbit movies for any pyvista plotter (single or linked views)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pyvista as pv
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
from pyvistaqt import QtInteractor

from engine.errors import ConfigError

CAMERA_PRESETS = ("top", "iso", "front", "reset")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MOVIE_SUFFIXES = (".gif", ".mp4")
MAX_SIDE = 8192
# Looking from the (-α, -β) corner, above the surface: valleys and ridges both read well.
ISO_DIRECTION = (-1.0, -1.7, 1.25)


def apply_camera(plotter: pv.Plotter, preset: str, bar_room: float = 0.0, top_room: float = 0.0) -> None:
    """Point every (linked) camera of ``plotter`` at one of :data:`CAMERA_PRESETS` and fit the
    scene, leaving ``bar_room`` of the width free on the right (colour bar) and ``top_room`` of
    the height free at the top (titles)."""
    if preset not in CAMERA_PRESETS:
        raise ConfigError("camera", preset, f"one of {', '.join(CAMERA_PRESETS)}", "3D view")
    for renderer in plotter.renderers:  # a map from above reads best without perspective
        renderer.parallel_projection = preset == "top"
    if preset == "top":
        plotter.view_xy(render=False)
    elif preset == "front":
        plotter.view_vector((0.0, -1.0, 0.12), viewup=(0.0, 0.0, 1.0), render=False)
    else:
        plotter.view_vector(ISO_DIRECTION, viewup=(0.0, 0.0, 1.0), render=False)
    plotter.reset_camera(render=False)
    fit_view(plotter, bar_room, top_room)
    plotter.render()


def fit_view(plotter: pv.Plotter, bar_room: float = 0.0, top_room: float = 0.0, margin: float = 0.09) -> None:
    """Zoom and shift so the scene's projected bounding box fills the free part of the view.

    reset_camera fits a bounding sphere to the vertical view angle, which wastes space in wide
    views and clips wide surfaces in narrow ones.
    """
    renderer = plotter.renderers[0]
    width, height = renderer.GetSize()
    bounds = _union_bounds(plotter)
    if width < 16 or height < 16 or bounds is None:
        return
    camera = renderer.GetActiveCamera()
    camera.SetWindowCenter(0.0, 0.0)
    free = np.array([width * (1 - bar_room - 2 * margin), height * (1 - top_room - 2 * margin)])
    target = np.array([width * (margin + free[0] / width / 2), height * (margin + free[1] / height / 2)])
    for _ in range(2):  # perspective: a second pass corrects the first one's estimate
        corners = _projected_corners(renderer, bounds)
        span = corners.max(axis=0) - corners.min(axis=0)
        camera.Zoom(float(min(free / np.maximum(span, 1.0))))
    corners = _projected_corners(renderer, bounds)
    centre = (corners.max(axis=0) + corners.min(axis=0)) / 2
    offset = (centre - target) / (np.array([width, height]) / 2)
    camera.SetWindowCenter(float(offset[0]), float(offset[1]))
    renderer.ResetCameraClippingRange()


def _union_bounds(plotter: pv.Plotter) -> np.ndarray | None:
    found = [np.array(r.ComputeVisiblePropBounds()) for r in plotter.renderers]
    found = [b for b in found if b[0] <= b[1]]
    if not found:
        return None
    stacked = np.array(found)
    return np.r_[stacked[:, 0::2].min(axis=0), stacked[:, 1::2].max(axis=0)][[0, 3, 1, 4, 2, 5]]


def _projected_corners(renderer: pv.Renderer, bounds: np.ndarray) -> np.ndarray:
    """The bounding box's corners in pixels of ``renderer``'s own viewport (display coordinates
    count from the window's corner, which is not the viewport's in a grid of renderers)."""
    points = []
    for x in bounds[0:2]:
        for y in bounds[2:4]:
            for z in bounds[4:6]:
                renderer.SetWorldPoint(x, y, z, 1.0)
                renderer.WorldToDisplay()
                points.append(renderer.GetDisplayPoint()[:2])
    return np.array(points) - np.array(renderer.GetOrigin(), dtype=float)


def _check_size(size: tuple[int, int] | None, what: str) -> None:
    if size is None:
        return
    if len(size) != 2 or not all(isinstance(v, int) and 16 <= v <= MAX_SIDE for v in size):
        raise ConfigError(f"{what} size", size, f"(width, height) in pixels, each 16 to {MAX_SIDE}")


def _check_suffix(path: Path, allowed: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in allowed:
        raise ConfigError(f"{what} file", str(path), f"a name ending in {' or '.join(allowed)}")


def save_screenshot(plotter: pv.Plotter, path: str | Path, size: tuple[int, int] | None = None) -> Path:
    """Render ``plotter`` at ``size`` (width, height) into an image file; the view keeps its size."""
    path = Path(path)
    _check_suffix(path, IMAGE_SUFFIXES, "screenshot")
    _check_size(size, "screenshot")
    path.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(path), window_size=list(size) if size else None)
    return path


def write_orbit_movie(plotter: pv.Plotter, path: str | Path, frames: int = 72, fps: int = 24,
                      size: tuple[int, int] | None = None,
                      on_frame: Callable[[int, int], None] | None = None) -> Path:
    """One full turn of the camera around the focal point, as GIF or MP4; camera restored after."""
    path = Path(path)
    _check_suffix(path, MOVIE_SUFFIXES, "movie")
    _check_size(size, "movie")
    if not 2 <= frames <= 3600:
        raise ConfigError("frames", frames, "2 to 3600")
    if not 1 <= fps <= 120:
        raise ConfigError("fps", fps, "1 to 120")
    width, height = size or tuple(plotter.window_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp4":  # H.264 wants sides divisible by 16 (or it rescales)
        width, height = max(16, width // 16 * 16), max(16, height // 16 * 16)
        writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=16)
    else:
        writer = imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    saved = plotter.camera_position
    try:
        with writer:
            for frame in range(frames):
                writer.append_data(plotter.screenshot(None, window_size=[width, height], return_img=True))
                for camera in _cameras(plotter):
                    camera.Azimuth(360.0 / frames)
                if on_frame is not None:
                    on_frame(frame + 1, frames)
    finally:
        plotter.camera_position = saved
        plotter.render()
    return path


def _cameras(plotter: pv.Plotter) -> list:
    """Distinct cameras (linked views share one, so it must be turned only once)."""
    unique = {id(r.camera): r.camera for r in plotter.renderers}
    return list(unique.values())


def release_on_quit(plotter: pv.Plotter) -> None:
    """Close ``plotter`` before the application quits: a GL context still alive when Qt tears
    the window down crashes the interpreter at exit."""
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(plotter.close)


class AutoFit(QObject):
    """Re-applies the last camera preset when the 3D widget is resized, until the user moves the
    camera: a view gets its real size only once laid out and shown, so an earlier fit is off."""

    USER_EVENTS = ("LeftButtonPressEvent", "RightButtonPressEvent", "MiddleButtonPressEvent",
                   "MouseWheelForwardEvent", "MouseWheelBackwardEvent")

    def __init__(self, plotter: QtInteractor, refit: Callable[[str], None]) -> None:
        super().__init__(plotter)
        self.preset: str | None = None
        self._plotter = plotter
        self._refit = refit
        for event in self.USER_EVENTS:
            plotter.iren.add_observer(event, self._user_moved)
        plotter.installEventFilter(self)

    def _user_moved(self, *_: object) -> None:
        self.preset = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Resize and self.preset is not None:
            QTimer.singleShot(0, self._refit_now)  # after VTK has taken the new size
        return False

    def _refit_now(self) -> None:
        if self.preset is not None and not getattr(self._plotter, "_closed", True):
            self._refit(self.preset)
