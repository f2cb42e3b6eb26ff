"""``losslab study STUDY.toml|NAME --out DIR``: every variant trained, measured and compared."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

EXAMPLES = """examples:
  losslab study digits-bias-sweep --out sweep/        # a bundled study (see --list)
  losslab study my-study.toml --out results/          # re-run the same line to resume
  losslab study my-study.toml --out results/ --report-only
  losslab study --list"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study", help="run a study: many variants of one experiment, with surfaces, flatness and a report",
        description="Train every variant of a study file, compute its surface, 1D curves and flatness, and "
        "write DIR/summary.csv and a self-contained DIR/report.html. Re-running does only what is missing "
        "(also after the process was killed).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", nargs="?", metavar="STUDY", help="study .toml file or bundled study name")
    parser.add_argument("--out", type=Path, help="folder for every file of the study")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    parser.add_argument("--variant", action="append", metavar="NAME",
                        help="run only this variant (repeat for several; default: all)")
    parser.add_argument("--report-only", action="store_true",
                        help="only (re)write summary.csv and report.html from what is computed")
    parser.add_argument("--check", action="store_true", help="validate the study file, list its variants, run nothing")
    parser.add_argument("--list", action="store_true", help="list the bundled studies")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import ConfigError
    from engine.study import bundled_studies, load_study

    if args.list:
        from engine.resources import studies

        for name, bundled in studies().items():
            print(f"{name:<28} {bundled.description}")
        return 0
    if not args.study:
        raise ConfigError("STUDY", None, "a study .toml file or one of: " + ", ".join(bundled_studies()))
    study = load_study(args.study)
    if args.check:
        _print_plan(study)
        return 0
    if args.out is None:
        raise ConfigError("--out", None, "a folder for the study's files")
    _check_variants(study, args.variant)
    return _run(study, args)


def _print_plan(study) -> None:
    from engine.study import planned_steps

    print(f"study {study.name}: {len(study.variants)} variants, steps {', '.join(planned_steps(study))}")
    for v in study.variants:
        changes = ", ".join(f"{k} = {val!r}" for k, val in v.overrides.items()) or "(the base experiment)"
        print(f"  {v.name:<28} {changes}")


def _check_variants(study, names: list[str] | None) -> None:
    from engine.errors import ConfigError

    known = [v.name for v in study.variants]
    for name in names or []:
        if name not in known:
            raise ConfigError("--variant", name, "one of " + ", ".join(known), study.source)


def _run(study, args: argparse.Namespace) -> int:
    from engine.cli.progress import ProgressPrinter
    from engine.landscape.distribution.distributed import world_from_env
    from engine.study import run_study, write_report, write_summary
    from engine.study.processes import device_of_process, fitted_to_process, share_of_process, study_finished
    from engine.study.record import locked

    began = time.perf_counter()
    failed: dict[str, str] = {}
    world = None if args.report_only else world_from_env()  # one of several processes started by torchrun
    variants, device, mine = args.variant, args.device, study
    if world is not None:
        variants = share_of_process(study, args.variant, world)
        mine, device = fitted_to_process(study, world), device_of_process(args.device, world)
        print(f"process {world.rank} of {world.size}: variants {', '.join(variants) or '(none)'}", flush=True)
    if not args.report_only:
        outcome = run_study(mine, args.out, device=device, on_event=ProgressPrinter(), variants=variants)
        failed = outcome.failed
        print(f"study {study.name}: {len(outcome.ran)} steps computed, {len(outcome.skipped)} already done, "
              f"{len(failed)} variants failed", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with locked(args.out):  # other processes of the same study may finish at the same moment
        if world is not None and not study_finished(study, args.out, args.variant):
            print("other processes are still running variants: the last one to finish writes the report "
                  f"(or run: losslab study {args.study} --out {args.out} --report-only)")
            return 1 if failed else 0
        summary = write_summary(study, args.out)
        report = write_report(study, args.out)
    print(f"summary: {summary}\nreport:  {report}\nwall time {time.perf_counter() - began:.0f} s")
    for name, message in failed.items():
        print(f"losslab: variant {name} failed at {message}")
    return 1 if failed else 0
