"""``losslab gui [FILE] [--screenshot OUT.png]``: the desktop app (also what plain ``losslab`` runs).

Qt is imported inside :func:`run` only, so the rest of the CLI never loads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.export import parse_size

    size = parse_size(args.size)
    from app.app import run_gui  # Qt is loaded only now

    return run_gui(args.file, args.screenshot, size)
