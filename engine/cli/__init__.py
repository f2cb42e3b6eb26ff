"""The engine's command line: one sub-command module each, all over the engine's Python API.

Each sub-command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``. The installed
``losslab`` command is :func:`app.cli.main`, which adds ``gui`` (the desktop app) to these; this
module stays Qt-free so ``python -m engine.cli`` runs on a headless cluster node (torchrun).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

DEBUG_HELP = "show Python tracebacks instead of one-line messages"
SUBCOMMANDS = ("train", "info", "surface", "export", "demo", "flatness", "connect", "study", "presets")


def build_parser(extra_commands: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    """The parser of every engine sub-command; ``extra_commands`` are more ``add_parser`` functions."""
    parser = argparse.ArgumentParser(
        prog="losslab",
        description="LossLab: train models, compute and view neural-network loss landscapes.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        # A sub-command that cannot be imported is a broken install: fail loudly, never hide it.
        importlib.import_module(f"engine.cli.{name}").add_parser(subparsers)
    for add_parser in extra_commands:
        add_parser(subparsers)
    for sub in subparsers.choices.values():  # `losslab train ... --debug` works too
        if "--debug" not in sub._option_string_actions:
            sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed sub-command behind the one error boundary: messages, exit codes, no tracebacks."""
    from engine.cli.boundary import guarded

    return guarded(lambda: int(args.run(args) or 0), debug=bool(getattr(args, "debug", False)),
                   command=getattr(args, "command", None) or "")


if __name__ == "__main__":
    sys.exit(main())
