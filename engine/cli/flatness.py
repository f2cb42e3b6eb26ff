"""``losslab flatness RUN.h5``: Hessian eigenvalues and trace at a checkpoint (and a surface's rise)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  losslab flatness run.h5                                   # top eigenvalue and trace on 1000 test samples
  losslab flatness run.h5 --checkpoint 5 --split train --top-k 3 --subset 0
  losslab flatness run.h5 --surface surface.h5 --radius 0.25"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from engine.analysis.options import FlatnessOptions
    from engine.schema import add_options

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
    add_options(parser, FlatnessOptions)
    parser.add_argument("--allow-user-code", action="store_true",
                        help="the run's model is arch = 'user': allow importing the Python file it names")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.analysis.flatness import hessian_top_eigenvalues, hessian_trace
    from engine.analysis.options import FlatnessOptions
    from engine.cli.progress import ProgressPrinter
    from engine.landscape.evaluation.evaluate import select_subset
    from engine.schema import from_args
    from engine.storage.run import load_run

    opts = from_args(FlatnessOptions, args)
    run_file = load_run(args.run_file, allow_user_code=args.allow_user_code)
    model = run_file.model(opts.checkpoint)
    inputs, targets = select_subset({opts.split: run_file.tensors(opts.split)}, opts.subset, opts.seed)[opts.split]
    loss = run_file.config.train.loss
    common = dict(seed=opts.seed, ignore_biasbn=opts.ignore_biasbn, on_event=ProgressPrinter())
    print(f"flatness   {args.run_file}  checkpoint {opts.checkpoint}  {opts.split} {len(inputs)} samples  "
          f"loss {loss}", flush=True)
    values = hessian_top_eigenvalues(model, inputs, targets, loss, k=opts.top_k, iterations=opts.iterations,
                                     **common)
    print("top eigenvalue" + ("s" if len(values) > 1 else "") + "  " + "  ".join(f"{v:.6g}" for v in values),
          flush=True)
    mean, error = hessian_trace(model, inputs, targets, loss, samples=opts.trace_samples, **common)
    print(f"trace      {mean:.6g} ± {error:.3g}  ({opts.trace_samples} Rademacher vectors, standard error)")
    if opts.surface:
        print(_surface_line(opts.surface, opts.metric, opts.radius))
    return 0


def _surface_line(path: str, metric: str, radius: float) -> str:
    from engine.analysis.flatness import surface_flatness
    from engine.storage.surface_file import load_surface

    f = surface_flatness(load_surface(path), metric, radius)
    return (f"surface    {metric} centre {f['centre']:.6g}  within radius {f['radius']:g}: "
            f"mean rise {f['mean_rise']:.6g}  max rise {f['max_rise']:.6g}  ({f['points']} points)")
