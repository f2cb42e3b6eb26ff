"""``losslab presets``: the bundled experiment presets and studies, by name, with one line each."""

from __future__ import annotations

import argparse
import shutil
import textwrap


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "presets", help="list the bundled experiment presets and studies",
        description="List the experiments (and studies) that ship with LossLab. Every command that takes an "
                    "experiment file also takes one of these names, e.g. `losslab train digits-mlp-quick "
                    "--out run.h5`.")
    parser.add_argument("--paths", action="store_true", help="also print where each file is installed")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.resources import presets, studies

    for title, entries in (("Experiment presets", presets()), ("Studies", studies())):
        if not entries:
            continue
        print(f"{title} ({len(entries)}):")
        for line in listing(entries.values(), args.paths):
            print(line)
        print()
    return 0


def listing(entries, with_paths: bool = False) -> list[str]:
    """``  name   description`` lines, the description wrapped to the terminal's width."""
    entries = list(entries)
    width = max(len(e.name) for e in entries) + 2
    room = max(40, shutil.get_terminal_size((120, 24)).columns - width - 2)
    lines = []
    for entry in entries:
        wrapped = textwrap.wrap(entry.description, room) or [""]
        lines.append(f"  {entry.name:<{width}}{wrapped[0]}")
        lines += [f"  {'':<{width}}{more}" for more in wrapped[1:]]
        if with_paths:
            lines.append(f"  {'':<{width}}{entry.path}")
    return lines
