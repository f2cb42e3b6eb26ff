"""What an exporter needs from a surface, and the checks every exporter shares.

``engine.storage.surface_file.Surface`` has these attributes; any object that has them
(e.g. a surface still being computed in the app) can be exported too.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from engine.errors import ConfigError, RunFileError


class SurfaceLike(Protocol):
    """A 1D curve or 2D grid of metrics over direction coordinates (α along x, β along y).

    2D: ``values[name][j, i]`` is the value at ``(x[i], y[j])``, shape ``(len(y), len(x))``.
    1D: ``y`` is None and ``values[name]`` has shape ``(len(x),)``. NaN = not computed.
    """

    path: Any
    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    attrs: dict
    trajectory: np.ndarray | None
    is_2d: bool
    metric_names: list[str]


def surface_label(surface: SurfaceLike) -> str:
    """The surface's file name for titles, or 'surface' when it has no file."""
    path = str(getattr(surface, "path", "") or "")
    return path.replace("\\", "/").rsplit("/", 1)[-1] or "surface"


def grid_shape(surface: SurfaceLike) -> tuple[int, ...]:
    """Shape every metric array must have: (len(y), len(x)) in 2D, (len(x),) in 1D."""
    if surface.is_2d:
        if surface.y is None:
            raise RunFileError(f"{surface_label(surface)}: 2D surface has no y coordinates")
        return (len(surface.y), len(surface.x))
    return (len(surface.x),)


def checked_array(surface: SurfaceLike, name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as float64 after checking it covers the grid point for point."""
    values = np.asarray(array, dtype=np.float64)
    expected = grid_shape(surface)
    if values.shape != expected:
        raise RunFileError(
            f"{surface_label(surface)}: {name} has shape {values.shape}, expected {expected} "
            f"(len(y), len(x)) for this grid"
        )
    return values


def metric_values(surface: SurfaceLike, metric: str) -> np.ndarray:
    """The raw values of ``metric``, or a ConfigError naming the metrics the surface holds."""
    if metric not in surface.values:
        available = ", ".join(surface.metric_names or sorted(surface.values)) or "none"
        raise ConfigError("surface metric", metric, f"one of: {available}", surface_label(surface))
    return checked_array(surface, metric, surface.values[metric])
