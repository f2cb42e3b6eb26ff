"""``losslab flatness RUN.h5``: Hessian eigenvalues and trace at a checkpoint (and a surface's rise)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  losslab flatness run.h5                                   # top eigenvalue and trace on 1000 test samples
  losslab flatness run.h5 --checkpoint 5 --split train --top-k 3 --subset 0
  losslab flatness run.h5 --surface surface.h5 --radius 0.25"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flatness",
        help="measure how flat a checkpoint's minimum is (Hessian eigenvalues, trace)",
        description="Top Hessian eigenvalues (power iteration) and the Hessian trace (Hutchinson) of "
        "the mean loss at a checkpoint, from Hessian-vector products; optionally the rise of a "
        "computed surface around its centre.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_file", metavar="RUN.h5", help="run file written by 'losslab train'")
    parser.add_argument("--checkpoint", default="final", help="epoch number or 'final' (default: final)")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="data the loss is averaged over; train is the biased set (default: test)")
    parser.add_argument("--subset", type=int, default=1000, metavar="N",
                        help="seeded random N samples of the split, 0 = all (default: 1000)")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="eigenvalues to find (default: 1)")
    parser.add_argument("--iterations", type=int, default=50,
                        help="most power iterations per eigenvalue (default: 50)")
    parser.add_argument("--trace-samples", type=int, default=20, metavar="S",
                        help="Rademacher vectors for the trace estimate (default: 20)")
    parser.add_argument("--ignore-biasbn", action="store_true",
                        help="take the Hessian over weights only (no biases or batch-norm parameters)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the subset and random vectors (default: 0)")
    parser.add_argument("--surface", metavar="SURFACE.h5", help="also report this surface's rise around its centre")
    parser.add_argument("--metric", default="test_loss", help="surface metric to use (default: test_loss)")
    parser.add_argument("--radius", type=float, default=0.5,
                        help="surface window |alpha|, |beta| <= radius (default: 0.5)")
    parser.add_argument("--allow-user-code", action="store_true",
                        help="the run's model is arch = 'user': allow importing the Python file it names")
    parser.set_defaults(run=run)


def _epoch(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


def run(args: argparse.Namespace) -> int:
    from engine.analysis.flatness import hessian_top_eigenvalues, hessian_trace
    from engine.cli.progress import ProgressPrinter
    from engine.errors import ConfigError
    from engine.landscape.evaluation.evaluate import select_subset
    from engine.storage.run import load_run

    for key, value, low in (("--subset", args.subset, 0), ("--top-k", args.top_k, 1),
                            ("--iterations", args.iterations, 1), ("--trace-samples", args.trace_samples, 1)):
        if value < low:
            raise ConfigError(key, value, f"an integer >= {low}")
    run_file = load_run(args.run_file, allow_user_code=args.allow_user_code)
    model = run_file.model(_epoch(args.checkpoint))
    inputs, targets = select_subset({args.split: run_file.tensors(args.split)}, args.subset, args.seed)[args.split]
    loss = run_file.config.train.loss
    common = dict(seed=args.seed, ignore_biasbn=args.ignore_biasbn, on_event=ProgressPrinter())
    print(f"flatness   {args.run_file}  checkpoint {args.checkpoint}  {args.split} {len(inputs)} samples  "
          f"loss {loss}", flush=True)
    values = hessian_top_eigenvalues(model, inputs, targets, loss, k=args.top_k, iterations=args.iterations,
                                     **common)
    print("top eigenvalue" + ("s" if len(values) > 1 else "") + "  " + "  ".join(f"{v:.6g}" for v in values),
          flush=True)
    mean, error = hessian_trace(model, inputs, targets, loss, samples=args.trace_samples, **common)
    print(f"trace      {mean:.6g} ± {error:.3g}  ({args.trace_samples} Rademacher vectors, standard error)")
    if args.surface:
        print(_surface_line(args.surface, args.metric, args.radius))
    return 0


def _surface_line(path: str, metric: str, radius: float) -> str:
    from engine.analysis.flatness import surface_flatness
    from engine.storage.surface_file import load_surface

    f = surface_flatness(load_surface(path), metric, radius)
    return (f"surface    {metric} centre {f['centre']:.6g}  within radius {f['radius']:g}: "
            f"mean rise {f['mean_rise']:.6g}  max rise {f['max_rise']:.6g}  ({f['points']} points)")
