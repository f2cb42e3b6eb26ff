"""The installed ``losslab`` command: the engine's sub-commands plus ``gui``, the desktop app.

Plain ``losslab`` opens the app, and so does ``losslab FILE...`` (files only, no sub-command).
Qt is imported inside :func:`run_gui_command` only, so ``losslab train`` and the other engine
commands never load it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import build_parser, run_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gui", help="open the desktop app (the default command)",
        description="Open the LossLab window, optionally with files: runs and surfaces join the workspace, "
                    "an experiment .toml (or a bundled preset's name) fills the Experiment panel, a "
                    ".losslab.json restores a saved workspace. With --screenshot the window is saved as a "
                    "picture and the app exits (for scripts).")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="run or surface file (.h5, loss-landscape's too), experiment .toml or preset name, "
                             "workspace .losslab.json")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="save a picture of the whole window to OUT.png and exit")
    parser.add_argument("--size", default="1400x900", metavar="WxH",
                        help="window size for --screenshot (default 1400x900)")
    parser.set_defaults(run=run_gui_command)


def run_gui_command(args: argparse.Namespace) -> int:
    from engine.export import parse_size

    size = parse_size(args.size)
    files = [gui_file(name) for name in args.files]
    from app.app import run_gui  # Qt is loaded only now

    return run_gui(files, args.screenshot, size)


def gui_file(name: str) -> Path:
    """A file to open: the path itself, else a bundled preset of that name (else 'file not found')."""
    from engine.errors import LossLabError
    from engine.resources import find_experiment

    path = Path(name)
    if path.exists() or path.suffix in (".h5", ".hdf5", ".json"):
        return path
    try:
        return find_experiment(name)
    except LossLabError:
        return path  # run_gui says "file not found"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(extra_commands=(add_parser,))
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 (argparse keeps them there)
    if argv and argv[0] not in commands and not argv[0].startswith("-"):
        argv = ["gui", *argv]  # `losslab FILE...`
    args = parser.parse_args(argv or ["gui"])
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
