"""VTK data sets built from a surface: a StructuredGrid (.vts/.vtk) and PolyData (.vtp).

Points are ``(α, β, z)`` with ``α = x[i]``, ``β = y[j]`` and ``z`` the displayed height
(:func:`display_z`), numbered with ``i`` fastest: point ``j * len(x) + i`` is ``(x[i], y[j])``.
A 1D curve is a line of points ``(α, 0, z)``. Every stored metric travels as a point array
of raw values under its own name (``<metric>_std`` for averaged curves), plus ``z`` (the
displayed height) and ``valid`` (1 = computed, 0 = NaN in the file).

Points that cannot be drawn (not computed, or infinite without ``zmax``) keep their raw
values in the arrays, sit at the lowest drawable height, and are hidden: in the
StructuredGrid through VTK's ghost array (ParaView skips hidden points and the cells
around them), in PolyData by leaving out every cell that touches one.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv

from engine.export.heights import display_z
from engine.export.surface_like import SurfaceLike, checked_array, metric_values, surface_label


def to_structured_grid(
    surface: SurfaceLike,
    metric: str = "test_loss",
    log: bool = False,
    zmax: float | None = None,
    zscale: float = 1.0,
) -> pv.StructuredGrid:
    """The surface as a StructuredGrid of dimensions ``(len(x), len(y) or 1, 1)``."""
    points, z = _points(surface, metric, log, zmax, zscale)
    grid = pv.StructuredGrid()
    grid.points = points
    grid.dimensions = (len(surface.x), len(surface.y) if surface.is_2d else 1, 1)
    _attach_arrays(grid, surface, metric, z, log, zmax, zscale)
    hidden = ~np.isfinite(z.ravel())
    if hidden.any():
        grid.hide_points(np.flatnonzero(hidden))
    return grid


def to_polydata(
    surface: SurfaceLike,
    metric: str = "test_loss",
    log: bool = False,
    zmax: float | None = None,
    zscale: float = 1.0,
) -> pv.PolyData:
    """Quads between neighbouring grid points (line segments for a 1D curve).

    Every point is kept, so point ``j * len(x) + i`` is ``(x[i], y[j])``; cells touching a
    point that cannot be drawn are left out. Cell arrays hold the mean of the cell's
    corners, like loss-landscape's h52vtp.
    """
    points, z = _points(surface, metric, log, zmax, zscale)
    corners = _cell_corners(len(surface.x), len(surface.y) if surface.is_2d else 1)
    corners = corners[np.isfinite(z.ravel())[corners].all(axis=1)]
    cells = np.column_stack([np.full(len(corners), corners.shape[1]), corners]).ravel()
    if corners.shape[1] == 4:
        mesh = pv.PolyData(points, faces=cells)
    else:
        mesh = pv.PolyData(points, lines=cells)
    _attach_arrays(mesh, surface, metric, z, log, zmax, zscale)
    for name in _point_array_names(surface):
        mesh.cell_data[name] = np.asarray(mesh.point_data[name], dtype=np.float64)[corners].mean(axis=1)
    mesh.cell_data["z"] = z.ravel()[corners].mean(axis=1)
    return mesh


def _points(
    surface: SurfaceLike, metric: str, log: bool, zmax: float | None, zscale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates (i fastest) and the displayed heights in grid shape."""
    z = display_z(metric_values(surface, metric), log=log, zmax=zmax, zscale=zscale)
    x = np.asarray(surface.x, dtype=np.float64)
    y = np.asarray(surface.y, dtype=np.float64) if surface.is_2d else np.zeros(1)
    alpha, beta = np.meshgrid(x, y)  # shape (len(y), len(x)), like the metric arrays
    drawable = np.isfinite(z)
    floor = z[drawable].min() if drawable.any() else 0.0
    heights = np.where(drawable, z, floor).reshape(alpha.shape)
    return np.column_stack([alpha.ravel(), beta.ravel(), heights.ravel()]), z


def _cell_corners(nx: int, ny: int) -> np.ndarray:
    """Point ids of each quad (counter-clockwise in α, β) or, for ny == 1, each segment."""
    if ny == 1:
        first = np.arange(nx - 1)
        return np.column_stack([first, first + 1])
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1))
    first = (j * nx + i).ravel()
    return np.column_stack([first, first + 1, first + nx + 1, first + nx])


def _point_array_names(surface: SurfaceLike) -> list[str]:
    names = [name for name in (surface.metric_names or list(surface.values)) if name in surface.values]
    return names + [f"{name}_std" for name in (surface.std or {})]


def _attach_arrays(
    data: pv.DataSet,
    surface: SurfaceLike,
    metric: str,
    z: np.ndarray,
    log: bool,
    zmax: float | None,
    zscale: float,
) -> None:
    """Raw metric values, displayed height, validity mask and how the height was made."""
    arrays = dict(surface.values)
    arrays.update({f"{name}_std": std for name, std in (surface.std or {}).items()})
    for name in _point_array_names(surface):
        data.point_data[name] = checked_array(surface, name, arrays[name]).ravel()
    data.point_data["z"] = z.ravel()
    data.point_data["valid"] = (~np.isnan(metric_values(surface, metric))).ravel().astype(np.uint8)
    data.field_data["source"] = np.array([surface_label(surface)])
    data.field_data["height_metric"] = np.array([metric])
    data.field_data["height_log10"] = np.array([int(log)])
    data.field_data["height_zmax"] = np.array([np.nan if zmax is None else float(zmax)])
    data.field_data["height_zscale"] = np.array([float(zscale)])
