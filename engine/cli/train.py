"""``losslab train EXPERIMENT.toml --out RUN.h5``."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.progress import ProgressPrinter
from engine.config import ExperimentConfig, load_experiment
from engine.errors import ConfigError
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

    cfg = read_experiment(Path(find_experiment(args.experiment)))
    try:
        out = train(cfg, args.out, device=args.device, resume=args.resume, overwrite=args.overwrite,
                    on_event=ProgressPrinter())
    except ConfigError as exc:
        if exc.source or exc.key == "device":
            raise
        # checks that need the data (bias class, loss vs targets) know the key, not the file
        raise ConfigError(exc.key, exc.value, exc.allowed, str(args.experiment)) from exc
    print(f"run file: {out}")
    return 0


def read_experiment(path: Path) -> ExperimentConfig:
    """The validated experiment, or a ConfigError naming the file when it is not readable text."""
    if path.is_dir():
        raise ConfigError("<file>", str(path), "an experiment .toml file, not a folder", str(path))
    try:
        return load_experiment(path)
    except UnicodeDecodeError as exc:
        raise ConfigError("<file>", str(path), f"UTF-8 text (byte {exc.start} is not)", str(path)) from exc
    except OSError as exc:
        raise ConfigError("<file>", str(path), f"a readable file ({exc.strerror})", str(path)) from exc
