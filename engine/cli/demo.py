"""``losslab demo``: the main job on the built-in digits, start to finish (``--quick``: in seconds)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from engine.cli.progress import ProgressPrinter


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train unbiased vs 30%%-mislabelled digits models, compute and export their surfaces",
        description="The main job on built-in data: two trainings, their 2D test-loss surfaces and 1D curves, "
                    ".vts/.png/.csv exports. Re-running reuses finished work.")
    parser.add_argument("--out-dir", type=Path, default=Path("losslab-demo"), help="folder for every file")
    parser.add_argument("--quick", action="store_true",
                        help="a small version (4 epochs on 500 digits, 7x7 grid) that checks an installation "
                             "in under 30 s")
    parser.add_argument("--grid", type=int, help="points per axis of the 2D surfaces (default 21, quick 7)")
    parser.add_argument("--epochs", type=int, help="training epochs per model (default 12, quick 4)")
    parser.set_defaults(run=run)


def demo_size(args: argparse.Namespace):
    from engine.demo import FULL, QUICK

    size = QUICK if args.quick else FULL
    chosen = {k: v for k, v in (("grid", args.grid), ("epochs", args.epochs)) if v is not None}
    return dataclasses.replace(size, **chosen)


def run(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    start = time.perf_counter()
    result = run_demo(args.out_dir, demo_size(args), on_event=ProgressPrinter())
    print(f"\nLossLab demo finished in {time.perf_counter() - start:.0f} s. Files:")
    for name, path in result.runs.items():
        print(f"  run      {name:<20} {path}")
    for name, path in result.surfaces.items():
        print(f"  surface  {name:<20} {path}")
    for name, path in result.curves.items():
        print(f"  1D curve {name:<20} {path}")
    for path in result.exports:
        print(f"  export   {path}")
    print("\nThe bias-landscape study's question - does a biased training set change the minimum's surroundings?")
    for line in comparison_lines(result):
        print(line)
    print("Curvature at each minimum (Hessian-vector products):", flush=True)
    from engine.analysis.report import headline_lines

    for line in headline_lines(result.runs):
        print(line)
    print("Open them with `losslab gui FILE...`, or the .vts files in ParaView.")
    return 0


def comparison_lines(result) -> list[str]:
    """Test accuracy, generalisation error and how fast the test loss rises around each minimum."""
    from engine.analysis.flatness import surface_flatness
    from engine.storage.run import load_run
    from engine.storage.surface_file import load_surface

    lines = [f"  {'run':<20} {'test acc':>9} {'gen. error':>11} {'centre loss':>12} {'loss rise |a|,|b|<=0.5':>23}"]
    for name, run_path in result.runs.items():
        metrics = load_run(run_path).metrics
        flat = surface_flatness(load_surface(result.surfaces[name]), "test_loss", 0.5)
        lines.append(f"  {name:<20} {100 * metrics['test_acc'][-1]:>8.1f}% {metrics['gen_error'][-1]:>11.3f} "
                     f"{flat['centre']:>12.4f} {flat['mean_rise']:>23.4f}")
    return lines
