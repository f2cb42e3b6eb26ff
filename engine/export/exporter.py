"""One entry point that writes a surface in any export format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, LossLabError
from engine.export.grids import to_polydata, to_structured_grid
from engine.export.html import write_html
from engine.export.options import ExportOptions
from engine.export.render import render_curve_png, render_surface_png
from engine.export.surface_like import SurfaceLike, metric_values
from engine.export.table import write_csv


def export_surface(
    surface_or_path: SurfaceLike | str | os.PathLike,
    out: str | os.PathLike,
    fmt: str | None = None,
    *,
    options: ExportOptions | None = None,
    **settings: Any,
) -> Path:
    """Write ``surface_or_path`` (a Surface or a surface .h5 file) to ``out``; returns ``out``.

    ``fmt`` is one of vts, vtp, vtk, png, csv (default: ``out``'s suffix). Every stored metric
    goes into vts/vtp/vtk/csv; ``metric`` picks the height (and the PNG's colours). A 1D
    curve is exported as a line: vts/vtk as a grid of ``len(x) × 1 × 1`` points, vtp as
    line segments. ``settings`` are :class:`ExportOptions` fields (metric, log, zmax, zscale,
    size, colormap, contours; defaults and checks live there); ``options`` replaces them.
    """
    if options is None:
        options = ExportOptions.from_dict({"format": fmt, **settings}, ExportOptions.SOURCE)
    out = Path(out)
    if out.is_dir():
        raise ConfigError("out", str(out), "a file name, not a folder")
    kind = options.output_format(out)
    if not out.suffix:
        out = out.with_suffix(f".{kind}")
    _check_writable(out)
    surface = _as_surface(surface_or_path)
    metric_values(surface, options.metric)
    _write(surface, out, kind, options)
    if not out.is_file() or out.stat().st_size == 0:
        raise LossLabError(f"{out}: the {kind} writer produced no file (disk full or no permission?)")
    return out


def _as_surface(surface_or_path: Any) -> SurfaceLike:
    if not isinstance(surface_or_path, str | os.PathLike):
        return surface_or_path
    from engine.storage.surface_file import load_surface

    return load_surface(surface_or_path)


def _check_writable(out: Path) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError("out", str(out), f"a file in an existing folder ({folder} does not exist)")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError("out", str(out), "a file you may write (no write permission there)")


def _write(surface: SurfaceLike, out: Path, kind: str, options: ExportOptions) -> None:
    heights = {"log": options.log_scale, "zmax": options.clamp_max, "zscale": options.z_scale}
    try:
        if kind == "csv":
            write_csv(surface, out)
        elif kind == "png" and surface.is_2d:
            render_surface_png(surface, out, options)
        elif kind == "png":
            render_curve_png(surface, out, options)
        elif kind == "html":
            write_html(surface, out, options)
        elif kind == "vtp":
            to_polydata(surface, options.metric, **heights).save(out, binary=True)
        else:
            to_structured_grid(surface, options.metric, **heights).save(out, binary=True)
    except OSError as exc:
        raise LossLabError(f"{out}: could not write the {kind} file: {exc.strerror or exc}") from exc
