"""A self-contained interactive HTML page of a 2D surface: the 3D scene in vtk.js.

The page embeds vtk.js and the scene's data (trame-vtk's standalone exporter, reached through
pyvista's ``plotter.trame.export_html``), so a colleague opens it in any browser, offline, and
can rotate and zoom it. The scene is the PNG export's: heights, colours and contour levels
follow the same rule (:func:`engine.export.render.surface_picture`), as does the training path.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError, LossLabError
from engine.export.heights import height_label
from engine.export.options import ExportOptions
from engine.export.render import (
    _add_contours,
    _add_trajectory,
    _look_from_above_a_side,
    _use_headless_gl,
    export_rule,
    surface_picture,
)
from engine.export.surface_like import surface_label
from engine.storage.surface_file import Surface


def write_html(surface: Surface, out: Path, options: ExportOptions) -> None:
    """Write the 3D scene of ``surface`` (2D only) to ``out`` as one standalone HTML file."""
    if not surface.is_2d:
        raise ConfigError("format", "html", "a 2D surface (export a 1D curve as png or csv)", surface_label(surface))
    _use_headless_gl()
    import pyvista as pv

    mesh, picture = surface_picture(surface, options)
    plotter = pv.Plotter(off_screen=True, window_size=list(options.size))
    try:
        plotter.set_background("white")
        plotter.add_mesh(mesh, scalars="z", clim=picture.color_limits, cmap=options.colormap,
                         smooth_shading=True, show_scalar_bar=True,
                         scalar_bar_args={"title": height_label(options.metric, options.log_scale), "color": "black"})
        _add_contours(plotter, mesh, picture)
        _add_trajectory(plotter, surface, options.metric, export_rule(options), picture)
        _look_from_above_a_side(plotter)
        _export(plotter, out)
    finally:
        plotter.close()


def _export(plotter, out: Path) -> None:
    try:
        plotter.trame.export_html(str(out))
    except ImportError as exc:  # trame-vtk / trame-pyvista are LossLab dependencies: a broken install
        raise LossLabError(f"{out}: the HTML export needs trame-vtk and trame-pyvista ({exc})") from exc
