"""``losslab export``: write a surface file as .vts/.vtp/.vtk for ParaView, a PNG or a CSV."""

from __future__ import annotations

import argparse

from engine.export.options import ExportOptions
from engine.schema import add_options, from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a surface to VTK (.vts/.vtp/.vtk), PNG, CSV or interactive HTML",
        description="Export a surface file. VTK files and CSV carry every stored metric; "
        "--metric picks the one drawn as height (and the PNG's colours).",
    )
    parser.add_argument("surface_file", metavar="SURFACE", help="surface .h5 file (losslab surface --out)")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write")
    add_options(parser, ExportOptions)
    # --surface was the metric's flag before; `losslab flatness --surface` names a file, so it became --metric
    parser.add_argument("--surface", dest="metric", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `losslab --help` stays fast; export_surface opens the file with load_surface.
    from engine.export import export_surface

    options = from_args(ExportOptions, args)
    written = export_surface(args.surface_file, args.out, options=options)
    print(f"wrote {written}")
    return 0
