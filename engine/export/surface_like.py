"""The checks every exporter shares, on the one surface type.

Exports take :class:`engine.storage.surface_file.Surface`: a file's contents, a job's
partial surface in the app and a view's copy are all that type (NaN = not computed).
``SurfaceLike`` is its old name, kept for callers written before the types were merged.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError, RunFileError
from engine.storage.surface_file import Surface

SurfaceLike = Surface


def surface_label(surface: Surface) -> str:
    """The surface's file name for titles, or 'surface' when it has no file."""
    path = str(getattr(surface, "path", "") or "")
    return path.replace("\\", "/").rsplit("/", 1)[-1] or "surface"


def grid_shape(surface: Surface) -> tuple[int, ...]:
    """Shape every metric array must have: (len(y), len(x)) in 2D, (len(x),) in 1D."""
    if surface.is_2d:
        if surface.y is None:
            raise RunFileError(f"{surface_label(surface)}: 2D surface has no y coordinates")
        return (len(surface.y), len(surface.x))
    return (len(surface.x),)


def checked_array(surface: Surface, name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as float64 after checking it covers the grid point for point."""
    values = np.asarray(array, dtype=np.float64)
    expected = grid_shape(surface)
    if values.shape != expected:
        raise RunFileError(
            f"{surface_label(surface)}: {name} has shape {values.shape}, expected {expected} "
            f"(len(y), len(x)) for this grid"
        )
    return values


def metric_values(surface: Surface, metric: str) -> np.ndarray:
    """The raw values of ``metric``, or a ConfigError naming the metrics the surface holds."""
    if metric not in surface.values:
        available = ", ".join(surface.metric_names or sorted(surface.values)) or "none"
        raise ConfigError("surface metric", metric, f"one of: {available}", surface_label(surface))
    return checked_array(surface, metric, surface.values[metric])
