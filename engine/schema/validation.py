"""Checking one value against its declaration: type, choices, range, then the field's own check."""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.schema.fields import Setting, is_union, settings_of

WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _scalar(value: Any, tp: Any) -> Any:
    """``value`` as ``tp`` (numpy scalars accepted), or ValueError with what is allowed."""
    value = value.item() if hasattr(value, "item") and type(value).__module__ == "numpy" else value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(WORDS[bool])
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(WORDS[int])
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(WORDS[float])
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("a finite number")
    elif tp is str and not isinstance(value, str):
        raise ValueError(WORDS[str])
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
        raise ConfigError(key, value, f"a list of {count}{PLURALS.get(args[0], 'values')}", source)
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
    elif not is_union(tp) and tp is not Any:
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
