"""Off-screen PNG pictures of a 2D surface (pyvista) and a 1D curve (matplotlib).

A 2D picture is drawn at a fixed vertical aspect, so a loss of 0–20 over α ∈ [−1, 1] is
readable without tuning: the displayed height range spans half the wider of the α/β
ranges, times ``zscale``. Colours, contour lines and the scalar bar use the displayed
height (log10 of the metric with ``log``), i.e. what the shape shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.export.grids import to_polydata
from engine.export.heights import display_z, height_label
from engine.export.options import ExportOptions
from engine.export.surface_like import SurfaceLike, metric_values, surface_label


def _use_headless_gl() -> None:
    """Without an X display VTK falls back to EGL; naming it skips a failing X attempt."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def render_surface_png(surface: SurfaceLike, out: Path, options: ExportOptions,
                       clim: tuple[float, float] | None = None) -> None:
    """A lit, colour-mapped 3D view of a 2D surface with contour lines, saved to ``out``.

    ``clim`` (displayed-height units) shares one colour range, contour levels and vertical
    scale between pictures of several surfaces (a study's grid); by default the surface's own.
    """
    metric, log, zmax, zscale = options.metric, options.log, options.zmax, options.zscale
    size, colormap, contours = options.size, options.colormap, options.contours
    _use_headless_gl()
    import pyvista as pv

    mesh = to_polydata(surface, metric, log=log, zmax=zmax)
    if mesh.n_cells == 0:
        raise DataError(f"{surface_label(surface)}: no drawable cell of {metric} (too few computed points)")
    heights = np.asarray(mesh.point_data["z"])
    drawable = heights[np.isfinite(heights)]
    low, high = clim if clim is not None else (drawable.min(), drawable.max())  # ignores inf points
    stretch = _vertical_aspect(mesh, high - low) * zscale
    points = np.array(mesh.points)
    points[:, 2] *= stretch
    mesh.points = points
    label = height_label(metric, log)
    font = min(size[0] / 1024, size[1] / 768)  # text keeps its share of the picture at any size

    plotter = pv.Plotter(off_screen=True, window_size=list(size), lighting="light_kit")
    try:
        plotter.set_background("white")
        plotter.add_mesh(
            mesh, scalars="z", clim=(low, high), cmap=colormap,
            smooth_shading=True, specular=0.4, specular_power=20,
            scalar_bar_args={"title": label, "color": "black", "position_x": 0.25, "width": 0.5,
                             "title_font_size": max(6, round(18 * font)),
                             "label_font_size": max(6, round(14 * font)), "fmt": "%.3g", "n_labels": 4},
        )
        _add_contours(plotter, mesh, low, high, contours)
        _add_trajectory(plotter, surface, metric, log, zmax, stretch)
        plotter.add_text(f"{surface_label(surface)} — {label}", position="upper_edge", color="black",
                         font_size=max(6, round(12 * font)))
        _look_from_above_a_side(plotter)
        plotter.screenshot(str(out))
    finally:
        plotter.close()


def _look_from_above_a_side(plotter) -> None:
    """A view off the diagonals and fairly steep, so paths into the minimum are not foreshortened."""
    plotter.view_vector((1.0, -1.8, 1.9), viewup=(0, 0, 1))
    plotter.reset_camera()
    plotter.camera.zoom(1.15)


def _vertical_aspect(mesh, height_range: float) -> float:
    """Factor that draws the height range at half the wider horizontal range."""
    x0, x1, y0, y1, _, _ = mesh.bounds
    width = max(x1 - x0, y1 - y0) or 1.0
    return 0.5 * width / height_range if height_range > 0 else 1.0


def _add_contours(plotter, mesh, low: float, high: float, count: int) -> None:
    """Iso-lines of the displayed height, lifted a little so the surface does not hide them."""
    if count <= 0 or high <= low:
        return
    levels = np.linspace(low, high, count + 2)[1:-1]
    lines = mesh.contour(isosurfaces=list(levels), scalars="z")
    if lines.n_points == 0:
        return
    x0, x1, y0, y1, _, _ = mesh.bounds
    lines.points[:, 2] += 0.002 * max(x1 - x0, y1 - y0)
    plotter.add_mesh(lines, color="black", line_width=1.2, opacity=0.6, show_scalar_bar=False)


def _add_trajectory(
    plotter, surface: SurfaceLike, metric: str, log: bool, zmax: float | None, stretch: float
) -> None:
    """The PCA training path (when stored) as a red line following the surface, epochs as dots."""
    import pyvista as pv

    path = getattr(surface, "trajectory", None)
    ascending = all(np.all(np.diff(axis) > 0) for axis in (surface.x, surface.y))
    if path is None or len(path) < 2 or not ascending:
        return
    path = np.asarray(path, dtype=np.float64)[:, :2]
    z = display_z(metric_values(surface, metric), log=log, zmax=zmax)
    lift = 0.01 * max(np.ptp(surface.x), np.ptp(surface.y))
    # Sampled densely between epochs so the line follows the surface instead of cutting through it.
    steps = np.linspace(0.0, 1.0, 16, endpoint=False)
    dense = np.concatenate([a + steps[:, None] * (b - a) for a, b in zip(path[:-1], path[1:])] + [path[-1:]])
    for points, draw in ((dense, "line"), (path, "dots")):
        heights = _heights_at(surface, z, points)
        keep = np.isfinite(heights)
        if keep.sum() < 2:
            return
        on_surface = np.column_stack([points[keep], heights[keep] * stretch + lift])
        if draw == "line":
            plotter.add_mesh(pv.lines_from_points(on_surface), color="red", line_width=3)
        else:
            plotter.add_points(on_surface, color="red", point_size=8, render_points_as_spheres=True)


def _heights_at(surface: SurfaceLike, z: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear heights at (α, β) points; next to an uncomputed point, the nearest grid value."""
    from scipy.interpolate import RegularGridInterpolator

    axes = (surface.y, surface.x)
    where = points[:, ::-1]
    linear = RegularGridInterpolator(axes, z, bounds_error=False, fill_value=np.nan)(where)
    nearest = RegularGridInterpolator(axes, z, method="nearest", bounds_error=False, fill_value=np.nan)(where)
    return np.where(np.isfinite(linear), linear, nearest)


def render_curve_png(surface: SurfaceLike, out: Path, options: ExportOptions) -> None:
    """A 1D curve (with its ± std band when averaged) as a line plot saved to ``out``."""
    metric, log, zmax, zscale = options.metric, options.log, options.zmax, options.zscale
    size, colormap = options.size, options.colormap
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = metric_values(surface, metric)
    if not np.isfinite(display_z(values, log, zmax)).any():
        raise DataError(f"{surface_label(surface)}: no computed point of {metric} to draw")
    colour = matplotlib.colormaps[colormap](0.3)
    dpi = 100
    figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    std = (surface.std or {}).get(metric)
    if std is not None:
        std = np.asarray(std, dtype=np.float64)
        axes.fill_between(surface.x, display_z(values - std, log, zmax, zscale),
                          display_z(values + std, log, zmax, zscale), color=colour, alpha=0.25,
                          linewidth=0, label="± 1 std")
    axes.plot(surface.x, display_z(values, log, zmax, zscale), color=colour, linewidth=2, marker="o",
              markersize=3, label=metric)
    axes.set_xlabel("α")
    axes.set_ylabel(height_label(metric, log))
    axes.set_title(f"{surface_label(surface)} — {height_label(metric, log)}")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out, format="png")
