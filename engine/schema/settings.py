"""The base class of every settings type: validated on construction, round-trips to dict/TOML/JSON/attrs."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import tomli_w

from engine.errors import ConfigError
from engine.schema.fields import setting_named, settings_of
from engine.schema.validation import check_value, validate


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
