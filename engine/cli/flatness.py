"""``losslab flatness RUN.h5``: curvature, sharpness and flatness at a checkpoint, and the sub-level
sets of a surface; ``--json OUT.json`` writes every number (the report's keys are a contract)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  losslab flatness run.h5 --json run-flatness.json            # top-3 eigenvalues, trace, density, sharpness
  losslab flatness run.h5 --checkpoint 5 --split train --subset 0 --per-layer --density off
  losslab flatness run.h5 --surface surface.h5 --level 0.5 --json report.json
  losslab flatness run.h5 --curvature ggn --ignore-biasbn"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from engine.analysis.options import FlatnessOptions
    from engine.schema import add_options

    parser = subparsers.add_parser(
        "flatness",
        help="measure how flat a checkpoint's minimum is (Hessian spectrum, trace, sharpness)",
        description="Top Hessian eigenvalues (Lanczos), the smallest one, the Hutchinson trace, the spectral "
        "density (stochastic Lanczos quadrature), relative flatness, eps-sharpness and average sharpness of "
        "the mean loss at a checkpoint, all from Hessian-vector products; with --surface, the sub-level "
        "sets of a computed surface.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_file", metavar="RUN.h5", help="run file written by 'losslab train'")
    add_options(parser, FlatnessOptions)
    parser.add_argument("--json", metavar="OUT.json", help="write every number computed to this JSON file "
                        "(also what was computed before a cancel)")
    parser.add_argument("--allow-user-code", action="store_true",
                        help="the run's model is arch = 'user': allow importing the Python file it names")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.analysis.options import FlatnessOptions
    from engine.analysis.report import flatness_report, write_report
    from engine.cli.progress import ProgressPrinter
    from engine.schema import from_args
    from engine.storage.run import load_run

    opts = from_args(FlatnessOptions, args)
    run_file = load_run(args.run_file, allow_user_code=args.allow_user_code)
    report: dict = {}
    print(f"flatness   {args.run_file}  checkpoint {opts.checkpoint}  {opts.split} "
          f"{'all' if opts.subset == 0 else opts.subset} samples  {opts.curvature}", flush=True)
    try:
        flatness_report(run_file, opts, report, on_event=ProgressPrinter())
    finally:  # a cancel or an error keeps what was computed
        if args.json and "top_eigenvalues" in report:
            print(f"report     {write_report(report, args.json)}")
        print("\n".join(summary_lines(report)), flush=True)
    return 0


def summary_lines(report: dict) -> list[str]:
    """The report's headline numbers for the terminal."""
    lines = []
    if "top_eigenvalues" in report:
        values = report["top_eigenvalues"]
        lines.append("top eigenvalue" + ("s" if len(values) > 1 else "") + "  " + "  ".join(f"{v:.6g}" for v in values))
    if "min_eigenvalue" in report:
        lines.append(f"min eigenvalue  {report['min_eigenvalue']:.6g}")
    if "trace" in report:
        t = report["trace"]
        lines.append(f"trace      {t['mean']:.6g} ± {t['stderr']:.3g}  ({t['samples']} Rademacher vectors, "
                     "standard error)")
    if "density" in report:
        d = report["density"]
        lines.append(f"density    {len(d['eigenvalues'])} quadrature nodes ({d['runs']} runs x {d['steps']} steps)")
    for key, label in (("relative_flatness", "relative flatness"), ("scale_invariant", "scale-invariant")):
        if key in report:
            lines.append(f"{label:<18} {report[key]['value']:.6g}")
    if "sharpness" in report:
        s = report["sharpness"]
        lines.append(f"sharpness  eps {s['epsilon']:g}: {s['value']:.6g} %  adaptive {s['adaptive']:.6g}")
    if "average_sharpness" in report:
        a, f = report["average_sharpness"], report["flat_fraction"]
        lines.append(f"average sharpness  radius {a['radius']:g}: {a['value']:.6g}  flat fraction "
                     f"{f['value']:.3g} (rise <= {f['threshold']:g})")
    if "sublevel" in report:
        s = report["sublevel"]
        lines.append(f"sub-level  {s['metric']} <= {s['level']:.6g}: {s['components']} component(s), area "
                     f"{s['area_fraction']:.3g}, centre component {s['centre_component_area']:.3g}")
    return lines
