"""One declaration per setting: every user-facing settings type is built from it.

A settings type is a dataclass that inherits :class:`Settings` and declares each field once
with :func:`setting` (type from the annotation; default, range, choices, help text and the
"applies when" rule in the field). From that declaration this module derives:

- validation with errors that name the file/key, the value found and what is allowed
  (:class:`engine.errors.ConfigError`), run whenever an instance is built;
- dict/TOML/JSON round trips (:meth:`Settings.to_dict`, :meth:`Settings.from_dict`, ...);
- HDF5 attributes (:meth:`Settings.to_attrs`, :meth:`Settings.from_attrs`);
- command-line flags (:func:`add_options`, :func:`from_args`).

The Qt forms are generated on the app side (``app/forms.py``) from the same declarations.
Plain dataclasses + field metadata were chosen over pydantic/attrs: the types stay ordinary
(frozen) dataclasses that the rest of the engine already uses, and the error wording is ours.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import tomli_w

from engine.errors import ConfigError

MISSING = dataclasses.MISSING


# ---- "applies when" rules ------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """When a field matters, as a test on the other fields' values plus words for help texts."""

    test: Callable[[Mapping[str, Any]], bool]
    text: str

    def __call__(self, values: Mapping[str, Any]) -> bool:
        return bool(self.test(values))

    def __and__(self, other: Rule) -> Rule:
        return Rule(lambda v: self(v) and other(v), f"{self.text} and {other.text}")

    def __or__(self, other: Rule) -> Rule:
        return Rule(lambda v: self(v) or other(v), f"{self.text} or {other.text}")

    def __invert__(self) -> Rule:
        return Rule(lambda v: not self(v), f"not ({self.text})")


def equals(name: str, *values: Any) -> Rule:
    """``name`` has one of ``values``."""
    return Rule(lambda v: v.get(name) in values, f"{name} = {' or '.join(map(str, values))}")


def given(name: str) -> Rule:
    """``name`` is set (not None and not empty)."""
    return Rule(lambda v: v.get(name) not in (None, ""), f"{name} is given")


def not_given(name: str) -> Rule:
    return Rule(lambda v: v.get(name) in (None, ""), f"no {name}")


def is_on(name: str) -> Rule:
    return Rule(lambda v: bool(v.get(name)), f"{name} is on")


def is_off(name: str) -> Rule:
    return Rule(lambda v: not v.get(name), f"{name} is off")


# ---- declaring a field ---------------------------------------------------------------------
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
) -> Any:
    """A dataclass field whose rules live in its metadata.

    ``check(value)`` may normalise the value (returns it) or refuse it by raising
    ``ValueError("what is allowed")``; ``key`` is the name in TOML/attrs when it differs from
    the attribute; ``parse`` turns command-line text into a value; ``cli=False`` keeps it off
    the command line; ``label`` is the form's label.
    """
    rules = {"help": help, "choices": tuple(choices) if choices is not None else None, "min": min, "max": max,
             "applies": applies, "check": check, "toml_key": key, "label": label, "flag": flag,
             "metavar": metavar, "parse": parse}
    meta = {k: v for k, v in rules.items() if v not in (None, "")}
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
        if _is_union(self.type) and len(args) == 1:
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


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


# ---- validation ------------------------------------------------------------------------------
_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _scalar(value: Any, tp: Any) -> Any:
    """``value`` as ``tp`` (numpy scalars accepted), or ValueError with what is allowed."""
    value = value.item() if hasattr(value, "item") and type(value).__module__ == "numpy" else value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(_WORDS[bool])
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(_WORDS[int])
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(_WORDS[float])
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("a finite number")
    elif tp is str and not isinstance(value, str):
        raise ValueError(_WORDS[str])
    return value


def _bounds(value: Any, tp: Any, meta: Mapping[str, Any]) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        word = {int: "an integer", float: "a number"}.get(tp, "a value")
        raise ValueError(f"{word} in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]")


def _item(value: Any, tp: Any, meta: Mapping[str, Any], key: str, source: str) -> Any:
    """One scalar: type, choices, range; errors name ``key``."""
    try:
        value = _scalar(value, tp)
        if "choices" in meta and value not in meta["choices"]:
            raise ValueError("one of " + ", ".join(map(str, meta["choices"])))
        if tp in (int, float):
            _bounds(value, tp, meta)
    except ValueError as exc:
        raise ConfigError(key, value, str(exc), source) from None
    return value


def _sequence(value: Any, tp: Any, meta: Mapping[str, Any], key: str, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
    item_types = args if fixed else (args[0],) * (len(value) if isinstance(value, Sequence) else 0)
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, Sequence) or (fixed and len(value) != len(args)):
        count = f"{len(args)} " if fixed else ""
        raise ConfigError(key, value, f"a list of {count}{_PLURALS.get(args[0], 'values')}", source)
    items = [_item(v, t, meta, f"{key}[{i}]", source) for i, (v, t) in enumerate(zip(value, item_types))]
    return tuple(items) if origin is tuple else items


def check_value(s: Setting, value: Any, key: str | None = None, source: str = "") -> Any:
    """``value`` validated (and normalised) against the declaration of ``s``."""
    key = key or s.key
    if value is None and s.optional:
        return None
    tp, origin = s.base, typing.get_origin(s.base)
    if origin in (list, tuple):
        value = _sequence(value, tp, s.meta, key, source)
    elif origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, value, "a table", source)
        value = dict(value)
    elif not _is_union(tp) and tp is not Any:
        value = _item(value, tp, s.meta, key, source)
    if "check" in s.meta:
        try:
            value = s.meta["check"](value)
        except ValueError as exc:
            raise ConfigError(key, value, str(exc), source) from None
    return value


def validate(obj: Any) -> None:
    """Check (and normalise in place) every field of ``obj``, then its cross-field rules."""
    cls = type(obj)
    for s in settings_of(cls):
        if not s.is_section:
            value = check_value(s, getattr(obj, s.name), cls.PREFIX + s.key, cls.SOURCE)
            object.__setattr__(obj, s.name, value)
    obj.check_combinations()


# ---- the base class ---------------------------------------------------------------------------
class Settings:
    """Base of every settings dataclass: validated on construction, round-trips everywhere.

    Subclasses set ``SOURCE`` (how errors name where a value came from when no file did, e.g.
    "surface options") and, for a nested section, ``PREFIX`` (e.g. "train.") so errors name
    the full key. Override :meth:`check_combinations` for rules that span fields.
    """

    SOURCE: ClassVar[str] = "settings"
    PREFIX: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate(self)

    def check_combinations(self) -> None:
        """Cross-field rules; raise ConfigError naming the field to change."""

    # -- copies and help
    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and validated (unknown names are refused)."""
        names = {s.name for s in settings_of(type(self))}
        for name, value in changes.items():
            if name not in names:
                raise ConfigError(name, value, f"one of {', '.join(sorted(names))}", self.SOURCE)
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_help(cls, name: str) -> str:
        return setting_named(cls, name).help

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's default, by attribute name (sections as their default instances)."""
        return {s.name: s.default() for s in settings_of(cls)}

    # -- dict / TOML / JSON
    def to_dict(self, keep_none: bool = False) -> dict[str, Any]:
        """Plain nested values by TOML key; None left out unless ``keep_none`` (TOML has no null)."""
        out: dict[str, Any] = {}
        for s in settings_of(type(self)):
            value = getattr(self, s.name)
            if isinstance(value, Settings):
                value = value.to_dict(keep_none)
            elif isinstance(value, tuple):
                value = list(value)
            if value is not None or keep_none:
                out[s.key] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "", prefix: str | None = None) -> Self:
        """Build from nested plain values; every key is checked, unknown keys are refused."""
        return _from_dict(cls, data, cls.PREFIX if prefix is None else prefix, source)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, source: str = "<text>") -> Self:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("<file>", source, f"valid TOML ({exc})", source) from exc
        return cls.from_dict(data, source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(keep_none=True))

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("<file>", source, f"valid JSON ({exc})", source) from exc
        return cls.from_dict(data, source)

    # -- HDF5 attributes
    def to_attrs(self) -> dict[str, Any]:
        """Flat HDF5-storable attributes: dotted keys for sections, None -> "", tables as JSON."""
        return _to_attrs(self, "")

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], prefix: str = "") -> Self:
        """The inverse of :meth:`to_attrs`; keys not stored keep their defaults, others are ignored."""
        return cls.from_dict(_attrs_to_dict(cls, attrs, prefix), "stored attributes", "")


def _from_dict(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(prefix.rstrip(".") or "<top>", data, "a table", source)
    by_key = {s.key: s for s in settings_of(cls)}
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        raise ConfigError(prefix + unknown[0], data[unknown[0]], "one of the keys " + ", ".join(sorted(by_key)),
                          source)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        s = by_key[key]
        if s.is_section and not (value is None and s.optional):
            kwargs[s.name] = _from_dict(s.base, value, f"{prefix}{key}.", source)
        else:
            kwargs[s.name] = check_value(s, value, prefix + key, source)
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a cross-field rule: say which file it came from
        if not source or exc.source == source:
            raise
        raise ConfigError(exc.key, exc.value, exc.allowed, source) from None


def _attr_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value)
    return list(value) if isinstance(value, tuple) else value


def _to_attrs(obj: Settings, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in settings_of(type(obj)):
        value = getattr(obj, s.name)
        if isinstance(value, Settings):
            out.update(_to_attrs(value, f"{prefix}{s.key}."))
        else:
            out[prefix + s.key] = _attr_value(value)
    return out


def _plain(value: Any) -> Any:
    """An attribute as h5py returns it -> the plain Python value it was written from."""
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return value


def _attrs_to_dict(cls: type, attrs: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in settings_of(cls):
        name = prefix + s.key
        if s.is_section:
            out[s.key] = _attrs_to_dict(s.base, attrs, name + ".")
        elif name in attrs:
            value = _plain(attrs[name])
            if typing.get_origin(s.base) is dict and isinstance(value, str):
                value = json.loads(value or "{}")
            out[s.key] = None if value == "" and s.optional else value
    return out


# ---- command line ----------------------------------------------------------------------------
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
        expected = _WORDS.get(s.base) or f"a comma-separated list of {_PLURALS.get(typing.get_args(s.base)[0])}"
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
        common = {"dest": s.name, "default": argparse.SUPPRESS, "help": _cli_help(s)}
        if s.base is bool:
            action = "store_true" if s.default() is False else argparse.BooleanOptionalAction
            parser.add_argument(flag_of(s), action=action, **common)
            continue
        parser.add_argument(flag_of(s), metavar=_metavar(s), **common)


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


# ---- converters shared by several types ------------------------------------------------------------
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
