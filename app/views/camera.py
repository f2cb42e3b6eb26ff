"""Camera presets, screenshots and orbit movies for any pyvista plotter (single or linked views)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import imageio.v2 as imageio
import pyvista as pv
from PySide6.QtWidgets import QApplication

from engine.errors import ConfigError

CAMERA_PRESETS = ("top", "iso", "front", "reset")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MOVIE_SUFFIXES = (".gif", ".mp4")
MAX_SIDE = 8192
# Looking from the (-α, -β) corner, above the surface: valleys and ridges both read well.
ISO_DIRECTION = (-1.0, -1.7, 1.25)


def apply_camera(plotter: pv.Plotter, preset: str, zoom: float = 1.0, shift: float = 0.0) -> None:
    """Point every (linked) camera of ``plotter`` at one of :data:`CAMERA_PRESETS`; ``shift``
    moves the picture left by that fraction of the half-width (room for a colour bar)."""
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
    plotter.camera.zoom(zoom)
    plotter.camera.SetWindowCenter(shift, 0.0)
    plotter.render()


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
