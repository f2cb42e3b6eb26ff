"""``losslab surface RUN.h5 --out SURFACE.h5``: compute (or resume) a 1D/2D loss surface.

The arguments are generated from :class:`engine.landscape.SurfaceOptions`, which holds the
defaults, choices and checks; this module only translates the command line.
"""

from __future__ import annotations

import argparse

import numpy as np

from engine.cli.progress import ProgressPrinter
from engine.landscape import SurfaceOptions, as_source, compute_surface, load_surface
from engine.landscape.distribution.distributed import compute_surface_distributed, world_from_env
from engine.landscape.evaluation.runner import tune_allocator
from engine.schema import add_options, from_args

EXAMPLES = """examples:
  losslab surface run.h5 --x=-1:1:51 --y=-1:1:51 --split test --out surface.h5
  losslab surface run.h5 --x=-1:1:51 --average 20 --out curve.h5          # mean +- std of 20 directions
  losslab surface run.h5 --directions pca --x=-1.2:1.2:41 --y=-1.2:1.2:41 --out pca.h5
  losslab surface small.h5 --directions interpolate --to large.h5 --x=-0.5:1.5:401 \\
      --dir-type states --out ab.h5
Re-running the same command after an interruption computes only the missing points.
On N processes: torchrun --nproc_per_node=N -m engine.cli surface ... (see README, Cluster / SLURM).
Grid axes start with '-', so write --x=-1:1:51 (with '=')."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "surface",
        help="compute a 1D or 2D loss surface around a checkpoint",
        description="Evaluate loss and accuracy on a grid theta + alpha*x + beta*y around a "
        "checkpoint of a run and store it (resumably) in a loss-landscape compatible HDF5 file.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_file", metavar="RUN.h5", help="run file written by 'losslab train'")
    add_options(parser, SurfaceOptions)
    parser.add_argument(
        "--out",
        required=True,
        metavar="SURFACE.h5",
        help="surface file to write; an existing one made by the same command is resumed",
    )
    parser.add_argument(
        "--allow-user-code",
        action="store_true",
        help="the run's model is arch = 'user': allow importing the Python file it names",
    )
    parser.set_defaults(run=run)


def _open_run(path: str, allow_user_code: bool):
    from engine.storage.run import load_run

    return as_source(load_run(path, allow_user_code=allow_user_code))


def run(args: argparse.Namespace) -> int:
    options = from_args(SurfaceOptions, args)
    source = _open_run(args.run_file, args.allow_user_code)
    tune_allocator()  # this process only evaluates (never the app's process)
    world = world_from_env()  # one of several processes started by torchrun
    if world is None:
        path = compute_surface(source, options, args.out, on_event=ProgressPrinter())
    else:
        path = compute_surface_distributed(source, options, args.out, world, on_event=ProgressPrinter())
        if not world.is_main:
            return 0
    print(summary(path))
    return 0


def summary(path: str) -> str:
    """Where the surface is and what it holds, for the terminal."""
    surface = load_surface(path)
    shape = "x".join(str(n) for n in (len(surface.x), *(() if surface.y is None else (len(surface.y),))))
    lines = [
        f"surface: {path} ({'2D' if surface.is_2d else '1D'}, {shape} points, "
        f"{surface.attrs.get('compute_seconds', 0.0):.1f} s of evaluation)"
    ]
    for name, values in surface.values.items():
        finite = values[np.isfinite(values)]
        if finite.size:
            lines.append(
                f"  {name}: min {finite.min():.4g}, max {finite.max():.4g}"
                + (f", {values.size - finite.size} not finite" if finite.size < values.size else "")
            )
    return "\n".join(lines)
