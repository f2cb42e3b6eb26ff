"""``losslab connect A.h5 B.h5 --out C.h5``: a trained curve of low loss between two runs (Garipov et al. 2018)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  losslab connect a.h5 b.h5 --out ab-curve.h5                       # quadratic Bézier, 20 epochs
  losslab connect a.h5 b.h5 --out chain.h5 --curve polychain --bends 2 --epochs 40 --lr 0.03
  losslab surface a.h5 --directions interpolate --to b.h5 --via-curve ab-curve.h5 \\
      --x=-0.2:1.2:41 --y=-0.2:1.2:41 --out plane.h5                 # the plane with the curve drawn on it
Re-running the same command after an interruption (Ctrl-C, kill) continues from the last finished epoch."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from engine.connect.options import ConnectOptions
    from engine.schema import add_options

    parser = subparsers.add_parser(
        "connect",
        help="train a curve of low loss between two runs (mode connectivity) and compare it with the line",
        description="Train the bend(s) of a Bézier curve or polygonal chain between the parameters of two "
        "runs of one architecture (t drawn uniformly per batch, on run A's training split), then evaluate "
        "loss and accuracy along the curve and along the straight line, print both barrier heights and the "
        "accuracy of an ensemble sampled on the curve.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="A.h5", help="run file at t = 0 (its training split trains the curve)")
    parser.add_argument("run_b", metavar="B.h5", help="run file at t = 1 (same architecture and data)")
    parser.add_argument("--out", required=True, metavar="C.h5",
                        help="curve file to write; an existing one made by the same command is resumed")
    add_options(parser, ConnectOptions)
    parser.add_argument("--allow-user-code", action="store_true",
                        help="the runs' model is arch = 'user': allow importing the Python file it names")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.progress import ProgressPrinter
    from engine.connect import ConnectOptions, connect
    from engine.schema import from_args

    options = from_args(ConnectOptions, args)
    record = connect(args.run_a, args.run_b, args.out, options, on_event=ProgressPrinter(),
                     allow_user_code=args.allow_user_code)
    print(summary(record))
    return 0


def summary(record) -> str:
    """Barrier heights of both paths and the ensemble line, for the terminal."""
    s = record.summary
    lines = [f"curve file: {record.path}  ({record.options.curve}, {record.options.bends} bend(s), "
             f"{record.epochs_done} epochs; batch-norm re-estimated: {'yes' if s.get('bn_updated') else 'no'})",
             "barrier height (max over t minus mean of the end points):"]
    for split in ("train", "test"):
        curve, line = s[f"barrier_curve_{split}_loss"], s[f"barrier_line_{split}_loss"]
        lines.append(f"  {split} loss   curve {curve:.4f}   straight line {line:.4f}")
    if "a_test_acc" in s:
        text = (f"test accuracy: A {100 * s['a_test_acc']:.1f}%  B {100 * s['b_test_acc']:.1f}%  "
                f"A+B averaged {100 * s['ends_ensemble_test_acc']:.1f}%")
        if "ensemble_test_acc" in s:
            text += (f"  {len(s['ensemble_t'])} models on the curve averaged "
                     f"{100 * s['ensemble_test_acc']:.1f}%")
        lines.append(text)
    return "\n".join(lines)
