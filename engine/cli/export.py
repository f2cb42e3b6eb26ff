"""``losslab export``: write a surface file as .vts/.vtp/.vtk for ParaView, a PNG or a CSV."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a surface to VTK (.vts/.vtp/.vtk), PNG or CSV",
        description="Export a surface file. VTK files and CSV carry every stored metric; "
        "--surface picks the one drawn as height (and the PNG's colours).",
    )
    parser.add_argument("surface_file", metavar="SURFACE", help="surface .h5 file (losslab surface --out)")
    parser.add_argument("--format", metavar="vts|vtp|vtk|png|csv",
                        help="file type (default: the --out suffix)")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write")
    parser.add_argument("--surface", dest="metric", default="test_loss", metavar="METRIC",
                        help="metric drawn as the height, e.g. test_loss, train_acc (default: test_loss)")
    parser.add_argument("--log", action="store_true", help="draw log10 of the metric (clamped to 1e-12)")
    parser.add_argument("--zmax", type=float, metavar="Z", help="clamp values above Z (metric units)")
    parser.add_argument("--zscale", type=float, default=1.0, metavar="S", help="multiply heights by S")
    parser.add_argument("--size", default="1024x768", metavar="WxH", help="PNG size (default 1024x768)")
    parser.add_argument("--colormap", default="viridis", metavar="NAME", help="PNG colour map (viridis)")
    parser.add_argument("--contours", type=int, default=15, metavar="N",
                        help="PNG contour lines (default 15, 0 = none)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `losslab --help` stays fast; export_surface opens the file with load_surface.
    from engine.export import ExportOptions, export_surface, parse_size

    options = ExportOptions(
        format=args.format.lower() if args.format else None, metric=args.metric, log=args.log,
        zmax=args.zmax, zscale=args.zscale, size=parse_size(args.size), colormap=args.colormap,
        contours=args.contours,
    )
    written = export_surface(args.surface_file, args.out, options=options)
    print(f"wrote {written}")
    return 0
