"""Declaring a field: :func:`setting` puts its rules in the dataclass field; :class:`Setting` reads them."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.schema.rules import Rule

MISSING = dataclasses.MISSING


def setting(
    default: Any = MISSING,
    help: str = "",  # noqa: A002 (the word users and argparse use)
    *,
    factory: Callable[[], Any] | None = None,
    choices: Sequence[Any] | None = None,
    min: float | None = None,  # noqa: A002
    max: float | None = None,  # noqa: A002
    applies: Rule | None = None,
    check: Callable[[Any], Any] | None = None,
    key: str | None = None,
    label: str | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    parse: Callable[[str], Any] | None = None,
    cli: bool = True,
    old_flags: Sequence[str] = (),
) -> Any:
    """A dataclass field whose rules live in its metadata.

    ``check(value)`` may normalise the value (returns it) or refuse it by raising
    ``ValueError("what is allowed")``; ``key`` is the name in TOML/attrs when it differs from
    the attribute; ``parse`` turns command-line text into a value; ``cli=False`` keeps it off
    the command line; ``label`` is the form's label; ``old_flags`` are earlier names of the flag,
    still accepted (hidden from the help) so that scripts keep working.
    """
    rules = {"help": help, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
             "applies": applies, "check": check, "toml_key": key, "label": label, "flag": flag,
             "metavar": metavar, "parse": parse, "old_flags": tuple(old_flags)}
    meta = {k: v for k, v in rules.items() if v not in (None, "", ())}
    if not cli:
        meta["cli"] = False
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Setting:
    """One declared field, resolved: what forms, flags and validation read."""

    name: str
    type: Any
    meta: Mapping[str, Any]
    field: dataclasses.Field

    @property
    def key(self) -> str:
        return self.meta.get("toml_key", self.name)

    @property
    def help(self) -> str:
        return self.meta.get("help", "")

    @property
    def choices(self) -> tuple[Any, ...] | None:
        return self.meta.get("choices")

    @property
    def applies(self) -> Rule | None:
        return self.meta.get("applies")

    @property
    def optional(self) -> bool:
        return type(None) in typing.get_args(self.type)

    @property
    def base(self) -> Any:
        """The type without ``| None``."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        if is_union(self.type) and len(args) == 1:
            return args[0]
        return self.type

    @property
    def is_section(self) -> bool:
        return dataclasses.is_dataclass(self.base)

    def default(self) -> Any:
        f = self.field
        return f.default_factory() if f.default_factory is not MISSING else f.default


@functools.cache
def settings_of(cls: type) -> tuple[Setting, ...]:
    """The declared fields of a settings type, in declaration order."""
    hints = typing.get_type_hints(cls)
    return tuple(Setting(f.name, hints[f.name], f.metadata, f) for f in dataclasses.fields(cls))


def setting_named(cls: type, name: str) -> Setting:
    """A field by attribute name or TOML key."""
    for s in settings_of(cls):
        if name in (s.name, s.key):
            return s
    raise KeyError(name)


def is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def epoch_or_final(value: Any) -> int | str:
    """A checkpoint: an epoch number >= 0 (also as text) or 'final'."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if value == "final":
        return value
    raise ValueError("an epoch number >= 0 or 'final'")
