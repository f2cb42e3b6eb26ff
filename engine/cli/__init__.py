"""The ``losslab`` command: one sub-command module each, all over the engine's Python API.

Each sub-command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
With no arguments ``losslab`` opens the desktop app.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.errors import LossLabError
from engine.events import Cancelled

SUBCOMMANDS = ("train", "info", "surface", "export", "demo", "gui",
               "flatness")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="losslab",
        description="LossLab: train models, compute and view neural-network loss landscapes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"engine.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"engine.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        argv = ["gui"]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except Cancelled as exc:
        print(f"losslab: {exc}", file=sys.stderr)
        return 130
    except LossLabError as exc:
        print(f"losslab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("losslab: interrupted; completed work was saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
