"""The study file: a base experiment, variants overriding its keys, and the analyses to run.

A study is read and validated once into a :class:`StudyConfig` whose variants are complete,
validated :class:`ExperimentConfig` objects. Every error names the study file, the variant
and the key (``ConfigError``), e.g. ``sweep.toml variant 'mislabel-30': bias.fraction = 2.0
is not valid; expected a float in [0.0, 1.0]``.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import ExperimentConfig, from_dict, load_experiment
from engine.errors import ConfigError
from engine.landscape.options import SurfaceOptions
from engine.resources import find_experiment, studies
from engine.study.measures import FlatnessOptions, flatness_options

TOP_KEYS = ("name", "description", "base", "set", "variant", "grid", "surface", "curves", "flatness")
VARIANT_KEYS = ("name", "set")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,79}$")
# A 1D averaged curve unless the study says otherwise (the bias-landscape study's 1D plots).
CURVE_DEFAULTS = {"x": "-1:1:31", "average": 3, "split": "both"}


@dataclass(frozen=True)
class Variant:
    """One experiment of the study: its name, the keys it changes and the resulting config."""

    name: str
    overrides: dict[str, Any]
    config: ExperimentConfig


@dataclass(frozen=True)
class StudyConfig:
    name: str
    base: str
    source: str
    variants: tuple[Variant, ...]
    common: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    surface: SurfaceOptions | None = None
    curves: SurfaceOptions | None = None
    flatness: FlatnessOptions | None = None

    @property
    def varied_keys(self) -> list[str]:
        """Keys some variant overrides (beyond the study-wide ``set``), in first-seen order."""
        keys: dict[str, None] = {}
        for variant in self.variants:
            keys.update(dict.fromkeys(variant.overrides))
        return list(keys)


def bundled_studies() -> list[str]:
    return list(studies())


def resolve_study(spec: str | Path) -> Path:
    """A study file path, or the name of a bundled study (``digits-bias-sweep``)."""
    return find_experiment(spec, kind="studies")


def load_study(spec: str | Path) -> StudyConfig:
    """Read and validate a study file (or bundled study name)."""
    path = resolve_study(spec)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", str(path), f"valid TOML ({exc})", str(path)) from exc
    return study_from_dict(data, str(path), path.parent)


def study_from_dict(data: dict[str, Any], source: str = "<study>", folder: Path | None = None) -> StudyConfig:
    _check_keys(data, TOP_KEYS, "", source)
    name = _name(data.get("name"), "name", source)
    base_spec = data.get("base")
    if not isinstance(base_spec, str) or not base_spec:
        raise ConfigError("base", base_spec, "a bundled preset name or a path to an experiment .toml", source)
    base = _base_config(base_spec, folder or Path.cwd(), source)
    common = _table(data.get("set", {}), "set", source)
    variants = _expand(data, base, common, name, source)
    return StudyConfig(
        name=name, base=base_spec, source=source, variants=variants, common=common,
        description=_text(data.get("description", ""), "description", source),
        surface=_surface(data.get("surface"), "surface", {}, source),
        curves=_surface(data.get("curves"), "curves", CURVE_DEFAULTS, source),
        flatness=_flatness(data.get("flatness"), source),
    )


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str, source: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}", data[unknown[0]], "one of the keys " + ", ".join(allowed), source)


def _name(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str) or not SAFE_NAME.match(value):
        raise ConfigError(key, value, "a name of letters, digits and . _ = + - (it names a folder)", source)
    return value


def _text(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, value, "a string", source)
    return value


def _table(value: Any, key: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, value, 'a table of dotted keys, e.g. { "train.epochs" = 3 }', source)
    return dict(value)


def _base_config(spec: str, folder: Path, source: str) -> ExperimentConfig:
    """``base`` is a path (relative to the study file's folder or the working folder) or a preset name."""
    relative = folder / spec
    try:
        path = relative if relative.is_file() else find_experiment(spec)
    except ConfigError as exc:
        raise ConfigError("base", spec, exc.allowed, source) from exc
    return load_experiment(path)


def _expand(data: dict[str, Any], base: ExperimentConfig, common: dict[str, Any], study: str,
            source: str) -> tuple[Variant, ...]:
    """``[[variant]]`` x ``[grid]``: each listed variant once per grid point (names joined by +)."""
    listed = data.get("variant", [{"name": "base"}] if "grid" not in data else [{"name": ""}])
    if not isinstance(listed, list) or not listed:
        raise ConfigError("variant", listed, "one or more [[variant]] tables", source)
    grid = _grid(data.get("grid", {}), source)
    variants: list[Variant] = []
    for k, entry in enumerate(listed):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"variant[{k}]", entry, "a table with a name (and optionally set)", source)
        _check_keys(entry, VARIANT_KEYS, f"variant[{k}].", source)
        own = _table(entry.get("set", {}), f"variant {entry['name']!r}: set", source)
        for point in grid:
            name = _name(_combined_name(entry["name"], point), f"variant[{k}].name", source)
            overrides = {**own, **point}
            variants.append(Variant(name, overrides, _variant_config(base, common, overrides, name, study, source)))
    _check_unique(variants, source)
    return tuple(variants)


def _grid(value: Any, source: str) -> list[dict[str, Any]]:
    grid = _table(value, "grid", source)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key}", values, "a non-empty list of values", source)
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _combined_name(name: str, point: dict[str, Any]) -> str:
    parts = [name] if name else []
    parts += [f"{key.rsplit('.', 1)[-1]}={value:g}" if isinstance(value, float) else
              f"{key.rsplit('.', 1)[-1]}={value}" for key, value in point.items()]
    return "+".join(parts) if parts else "base"


def _variant_config(base: ExperimentConfig, common: dict[str, Any], overrides: dict[str, Any], name: str,
                    study: str, source: str) -> ExperimentConfig:
    where = f"{source} variant {name!r}"
    data = base.to_dict()
    data["name"] = f"{study}-{name}"
    for dotted, value in {**common, **overrides}.items():
        node = data
        *parents, leaf = str(dotted).split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(parents[:depth + 1]), node, "a section (table) of the experiment", where)
        node[leaf] = value
    return from_dict(data, where)


def _check_unique(variants: list[Variant], source: str) -> None:
    seen: set[str] = set()
    for v in variants:
        if v.name in seen:
            raise ConfigError("variant.name", v.name, "a name no other variant has", source)
        seen.add(v.name)


def _surface(value: Any, key: str, defaults: dict[str, Any], source: str) -> SurfaceOptions | None:
    if value is None:
        return None
    try:
        return SurfaceOptions.from_dict({**defaults, **_table(value, key, source)}, source=source)
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc.key}", exc.value, exc.allowed, source) from exc


def _flatness(value: Any, source: str) -> FlatnessOptions | None:
    return None if value is None else flatness_options(_table(value, "flatness", source), source)
