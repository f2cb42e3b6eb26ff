"""The installed ``losslab`` command: the engine's sub-commands plus ``gui``, the desktop app.

Plain ``losslab`` opens the app. Qt is imported inside :func:`run_gui_command` only, so
``losslab train`` and the other engine commands never load it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import build_parser, run_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gui", help="open the desktop app (the default command)",
        description="Open the LossLab window, optionally with a run, surface or experiment file. "
                    "With --screenshot the window is saved as a picture and the app exits (for scripts).")
    parser.add_argument("file", nargs="?", type=Path,
                        help="run file (.h5), surface file (.h5, loss-landscape's too) or experiment .toml")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="save a picture of the whole window to OUT.png and exit")
    parser.add_argument("--size", default="1400x900", metavar="WxH",
                        help="window size for --screenshot (default 1400x900)")
    parser.set_defaults(run=run_gui_command)


def run_gui_command(args: argparse.Namespace) -> int:
    from engine.export import parse_size

    size = parse_size(args.size)
    from app.app import run_gui  # Qt is loaded only now

    return run_gui(args.file, args.screenshot, size)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(extra_commands=(add_parser,))
    args = parser.parse_args(argv or ["gui"])
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
