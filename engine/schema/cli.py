"""Command-line flags from a declaration: :func:`add_options` and :func:`from_args`."""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.schema.fields import Setting, settings_of
from engine.schema.validation import PLURALS, WORDS


def flag_of(s: Setting) -> str:
    return s.meta.get("flag") or "--" + s.name.replace("_", "-")


def _cli_help(s: Setting) -> str:
    default = s.default()
    shown = "none" if default is None else "x".join(map(str, default)) if isinstance(default, tuple) else default
    words = f"{s.help} (default: {shown}"
    if s.applies is not None:
        words += f"; applies when {s.applies.text}"
    return (words + ")").replace("%", "%%")  # argparse formats help with %


def _text_parser(s: Setting) -> Callable[[str], Any] | None:
    """How command-line text becomes the field's value (None: the text is the value)."""
    if "parse" in s.meta:
        return s.meta["parse"]
    tp = s.base
    if tp in (int, float):
        return tp
    if typing.get_origin(tp) in (list, tuple):
        item = typing.get_args(tp)[0]
        return lambda text: [item(t) for t in text.replace(";", ",").split(",") if t.strip()]
    return None


def _from_text(s: Setting, text: Any) -> Any:
    parse = _text_parser(s)
    if parse is None or not isinstance(text, str):
        return text
    try:
        return parse(text)
    except ValueError:
        expected = WORDS.get(s.base) or f"a comma-separated list of {PLURALS.get(typing.get_args(s.base)[0])}"
        raise ConfigError(s.name, text, expected, "command line") from None


def _metavar(s: Setting) -> str:
    if "metavar" in s.meta:
        return s.meta["metavar"]
    if s.choices is not None:
        return "{" + ",".join(map(str, s.choices)) + "}"
    return {int: "N", float: "X"}.get(s.base, "TEXT")


def add_options(parser: argparse.ArgumentParser | Any, cls: type, exclude: Sequence[str] = ()) -> None:
    """One flag per declared field (``top_k`` -> ``--top-k``); defaults come from the declaration.

    Flags not given on the command line are left out of the namespace, so :func:`from_args`
    lets the settings type fill them in: one place for every default. Text is parsed and checked
    in :func:`from_args`, so a bad value gets the same message as in a file, naming the flag.
    """
    for s in settings_of(cls):
        untypeable = typing.get_origin(s.base) is dict and "parse" not in s.meta
        if s.is_section or untypeable or s.name in exclude or not s.meta.get("cli", True):
            continue
        common = {"dest": s.name, "default": argparse.SUPPRESS}
        if s.base is bool:
            action = "store_true" if s.default() is False else argparse.BooleanOptionalAction
            kind = {"action": action}
        else:
            kind = {"metavar": _metavar(s)}
        parser.add_argument(flag_of(s), help=_cli_help(s), **kind, **common)
        for old in s.meta.get("old_flags", ()):
            parser.add_argument(old, help=argparse.SUPPRESS, **kind, **common)


def from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The settings given on the command line (others at their defaults), validated."""
    by_name = {s.name: s for s in settings_of(cls)}
    given_values = {k: v for k, v in vars(args).items() if k in by_name}
    try:
        values = {k: _from_text(by_name[k], v) for k, v in given_values.items()}
        return cls(**(values | extra))
    except ConfigError as exc:  # name the flag the user typed, e.g. "--top-k = 0"
        s = by_name.get(exc.key.split("[")[0])
        if s is None or s.name not in given_values:
            raise
        raise ConfigError(flag_of(s) + exc.key[len(s.name):], exc.value, exc.allowed, exc.source) from None
