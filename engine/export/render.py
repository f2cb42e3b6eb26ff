"""Off-screen PNG pictures of a 2D surface (pyvista) and a 1D curve (matplotlib).

A 2D picture follows the same height and colour rule as the app's 3D view and heatmap
(:class:`engine.export.heights.HeightRule`): the data's z range is drawn at
HEIGHT_FRACTION of the wider of the α/β ranges, times ``zscale``; colours and contour lines
use the displayed height (log10 of the metric with ``log``), i.e. what the shape shows.
So a PNG with the view's settings has the view's z range, colour range and contour levels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.export.grids import to_polydata
from engine.export.heights import HeightRule, display_z, height_label
from engine.export.options import ExportOptions
from engine.export.surface_like import metric_values, surface_label
from engine.storage.surface_file import Surface


@dataclass(frozen=True)
class Picture:
    """What a rendered 2D picture shows, in display units (for checks against the app's view)."""

    z_range: tuple[float, float]
    color_limits: tuple[float, float]
    levels: np.ndarray
    height: float  # scene units the z range spans


def export_rule(options: ExportOptions) -> HeightRule:
    """The height/colour rule of an export's options (the app builds the same from its settings)."""
    return HeightRule(log_scale=options.log_scale, clamp_max=options.clamp_max, z_scale=options.z_scale,
                      color_range=getattr(options, "color_range", None), contours=options.contours,
                      levels=tuple(getattr(options, "levels", ()) or ()))


def _use_headless_gl() -> None:
    """Without an X display VTK falls back to EGL; naming it skips a failing X attempt."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def surface_picture(surface: Surface, options: ExportOptions) -> tuple[object, Picture]:
    """The mesh to draw (heights by the shared rule) and what it shows."""
    rule = export_rule(options)
    mesh = to_polydata(surface, options.metric, log=options.log_scale, zmax=options.clamp_max)
    if mesh.n_cells == 0:
        raise DataError(f"{surface_label(surface)}: no drawable cell of {options.metric} (too few computed points)")
    shown = rule.shown(metric_values(surface, options.metric))
    z_range = rule.z_range([shown])
    limits = rule.color_limits([shown])
    scale = rule.vertical_scale(surface.x, surface.y, z_range)
    heights = np.where(np.isfinite(shown), shown, z_range[0]).ravel()
    mesh.point_data["z"] = heights
    points = np.array(mesh.points)
    points[:, 2] = (heights - z_range[0]) * scale
    mesh.points = points
    picture = Picture(z_range, limits, rule.contour_levels(*limits), scale * (z_range[1] - z_range[0]))
    return mesh, picture


def render_surface_png(surface: Surface, out: Path, options: ExportOptions) -> Picture:
    """A lit, colour-mapped 3D view of a 2D surface with contour lines, saved to ``out``."""
    metric, log, size = options.metric, options.log_scale, options.size
    _use_headless_gl()
    import pyvista as pv

    mesh, picture = surface_picture(surface, options)
    label = height_label(metric, log)
    font = min(size[0] / 1024, size[1] / 768)  # text keeps its share of the picture at any size

    plotter = pv.Plotter(off_screen=True, window_size=list(size), lighting="light_kit")
    try:
        plotter.set_background("white")
        plotter.add_mesh(
            mesh, scalars="z", clim=picture.color_limits, cmap=options.colormap,
            smooth_shading=True, specular=0.4, specular_power=20,
            scalar_bar_args={"title": label, "color": "black", "position_x": 0.25, "width": 0.5,
                             "title_font_size": max(6, round(18 * font)),
                             "label_font_size": max(6, round(14 * font)), "fmt": "%.3g", "n_labels": 4},
        )
        _add_contours(plotter, mesh, picture)
        _add_trajectory(plotter, surface, metric, export_rule(options), picture)
        plotter.add_text(f"{surface_label(surface)} — {label}", position="upper_edge", color="black",
                         font_size=max(6, round(12 * font)))
        _look_from_above_a_side(plotter)
        plotter.screenshot(str(out))
    finally:
        plotter.close()
    return picture


def _look_from_above_a_side(plotter) -> None:
    """A view off the diagonals and fairly steep, so paths into the minimum are not foreshortened."""
    plotter.view_vector((1.0, -1.8, 1.9), viewup=(0, 0, 1))
    plotter.reset_camera()
    plotter.camera.zoom(1.15)


def _add_contours(plotter, mesh, picture: Picture) -> None:
    """Iso-lines of the displayed height, lifted a little so the surface does not hide them."""
    if not picture.levels.size:
        return
    lines = mesh.contour(isosurfaces=list(picture.levels), scalars="z")
    if lines.n_points == 0:
        return
    x0, x1, y0, y1, _, _ = mesh.bounds
    lines.points[:, 2] += 0.002 * max(x1 - x0, y1 - y0)
    plotter.add_mesh(lines, color="black", line_width=1.2, opacity=0.6, show_scalar_bar=False)


def _add_trajectory(plotter, surface: Surface, metric: str, rule: HeightRule, picture: Picture) -> None:
    """The PCA training path (when stored) as a red line following the surface, epochs as dots."""
    import pyvista as pv

    path = getattr(surface, "trajectory", None)
    ascending = all(np.all(np.diff(axis) > 0) for axis in (surface.x, surface.y))
    if path is None or len(path) < 2 or not ascending:
        return
    path = np.asarray(path, dtype=np.float64)[:, :2]
    z = rule.shown(metric_values(surface, metric))
    stretch = picture.height / (picture.z_range[1] - picture.z_range[0])
    lift = 0.01 * max(np.ptp(surface.x), np.ptp(surface.y))
    # Sampled densely between epochs so the line follows the surface instead of cutting through it.
    steps = np.linspace(0.0, 1.0, 16, endpoint=False)
    dense = np.concatenate([a + steps[:, None] * (b - a) for a, b in zip(path[:-1], path[1:])] + [path[-1:]])
    for points, draw in ((dense, "line"), (path, "dots")):
        heights = _heights_at(surface, z, points)
        keep = np.isfinite(heights)
        if keep.sum() < 2:
            return
        on_surface = np.column_stack([points[keep], (heights[keep] - picture.z_range[0]) * stretch + lift])
        if draw == "line":
            plotter.add_mesh(pv.lines_from_points(on_surface), color="red", line_width=3)
        else:
            plotter.add_points(on_surface, color="red", point_size=8, render_points_as_spheres=True)


def _heights_at(surface: Surface, z: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear heights at (α, β) points; next to an uncomputed point, the nearest grid value."""
    from scipy.interpolate import RegularGridInterpolator

    axes = (surface.y, surface.x)
    where = points[:, ::-1]
    linear = RegularGridInterpolator(axes, z, bounds_error=False, fill_value=np.nan)(where)
    nearest = RegularGridInterpolator(axes, z, method="nearest", bounds_error=False, fill_value=np.nan)(where)
    return np.where(np.isfinite(linear), linear, nearest)


def render_curve_png(surface: Surface, out: Path, options: ExportOptions) -> None:
    """A 1D curve (with its ± std band when averaged) as a line plot saved to ``out``."""
    metric, log, zmax, zscale = options.metric, options.log_scale, options.clamp_max, options.z_scale
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
