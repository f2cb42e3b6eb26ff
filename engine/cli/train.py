"""``losslab train EXPERIMENT.toml --out RUN.h5``."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.progress import ProgressPrinter
from engine.config import load_experiment
from engine.resources import find_experiment


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train an experiment into a run file",
                                   description="Train an experiment (TOML) and record it in one HDF5 run file.")
    parser.add_argument("experiment", help="experiment .toml file, or a bundled preset's name (`losslab presets`)")
    parser.add_argument("--out", type=Path, required=True, help="run file to write (.h5)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    group.add_argument("--overwrite", action="store_true", help="replace an existing run file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.training import train

    cfg = load_experiment(find_experiment(args.experiment))
    out = train(cfg, args.out, device=args.device, resume=args.resume, overwrite=args.overwrite,
                on_event=ProgressPrinter())
    print(f"run file: {out}")
    return 0
