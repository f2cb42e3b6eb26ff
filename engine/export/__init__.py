"""Surface exports: VTK files ParaView reads (.vts, .vtp, legacy .vtk), PNG pictures and CSV.

Public API: :func:`export_surface` (one entry point), :class:`ExportOptions` (validated
options shared by the CLI and the app), :func:`display_z`, :func:`to_structured_grid`,
:func:`to_polydata`, :func:`write_csv`, :data:`FORMATS`.
"""

from engine.export.exporter import export_surface
from engine.export.grids import to_polydata, to_structured_grid
from engine.export.heights import LOG_FLOOR, display_z
from engine.export.options import FORMATS, ExportOptions, parse_size
from engine.export.surface_like import SurfaceLike
from engine.export.table import write_csv

__all__ = [
    "FORMATS", "LOG_FLOOR", "ExportOptions", "SurfaceLike", "display_z", "export_surface",
    "parse_size", "to_polydata", "to_structured_grid", "write_csv",
]
