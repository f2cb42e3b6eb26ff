"""Every option of a surface computation, validated once, shared by the CLI, the API and the app.

Field rules (choices, minimum, help) live in the dataclass field metadata; the CLI builds
its arguments from them and the app its forms, so no argument is checked twice.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.landscape.directions.params import DIR_TYPES, IGNORES, NORMS
from engine.landscape.grid import parse_axis

METHODS = ("random", "pca", "interpolate", "init")
ORTHOGONALIZE = ("pick", "gram-schmidt")
SPLITS = ("train", "test", "both")
DEVICES = ("auto", "cpu", "cuda")
SOURCE = "surface options"
# Options that only change how fast the same numbers are computed: a resumed surface may differ here.
SPEED_ONLY = ("device", "batch_size", "compile", "threads")
PRECISIONS = ("fp32", "bf16", "fp16")


def _opt(default: Any, help: str, **rules: Any) -> Any:
    return field(default=default, metadata={"help": help, **rules})


@dataclass(frozen=True)
class SurfaceOptions:
    checkpoint: int | str = _opt("final", "epoch of the run to look around, or 'final'")
    x: str = _opt("-1:1:51", "x axis as MIN:MAX:N (write --x=-1:1:51 on the command line)")
    y: str | None = _opt(None, "y axis as MIN:MAX:N; leave out for a 1D curve")
    directions: str = _opt(
        "random",
        "random directions, PCA of the training trajectory, interpolation "
        "to another run (--to, --via) or from the initialisation (init)",
        choices=METHODS,
    )
    to: str | None = _opt(None, "interpolate: OTHER_RUN.h5[:EPOCH], alpha = 1 is this model")
    via: str | None = _opt(None, "interpolate in 2D: THIRD_RUN.h5[:EPOCH], beta = 1 is this model")
    norm: str = _opt(
        "filter", "random directions: rescale each filter, layer or nothing to the model", choices=NORMS
    )
    ignore: str = _opt(
        "biasbn",
        "random and PCA directions: biasbn leaves biases and batch-norm tensors (dim <= 1) unperturbed; "
        "interpolations always move every tensor",
        choices=IGNORES,
    )
    dir_type: str = _opt(
        "weights",
        "weights: parameters; states: parameters + BN running mean/var (use states to interpolate "
        "between models with batch norm)",
        choices=DIR_TYPES,
    )
    candidates: int = _opt(50, "random 2D: pick the most orthogonal pair of this many directions", min=2)
    orthogonalize: str = _opt(
        "pick", "random 2D: pick the most orthogonal pair, or Gram-Schmidt", choices=ORTHOGONALIZE
    )
    split: str = _opt("both", "data to evaluate: train, test or both in one pass", choices=SPLITS)
    subset: int = _opt(0, "evaluate a seeded random subset of N samples per split (0 = all)", min=0)
    average: int = _opt(0, "1D: average the curve over N random directions (mean and std; 0 = off)", min=0)
    seed: int = _opt(0, "seed for directions and the subset", min=0)
    device: str = _opt("auto", "where to evaluate", choices=DEVICES)
    batch_size: int = _opt(0, "samples per forward pass (0 = choose from the model and the memory)", min=0)
    precision: str = _opt(
        "fp32",
        "bf16/fp16: forward pass under autocast (faster, loss summed in fp32/fp64, values differ "
        "slightly); fp32 is exact",
        choices=PRECISIONS,
    )
    threads: int = _opt(0, "CPU threads (0 = automatic: 1 for models under 2 M parameters, which was "
                        "fastest with the cores shared, else all cores)", min=0)
    compile: bool = _opt(False, "torch.compile the model: a slow start (~40 s on a CPU), pays on large grids")
    bn_train_mode: bool = _opt(
        False,
        "evaluate batch-norm with batch statistics instead of the "
        "running ones (eval mode is the default, as in loss-landscape)",
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        object.__setattr__(self, "checkpoint", _checkpoint(self.checkpoint))
        parse_axis(self.x, "x")
        if self.y is not None:
            parse_axis(self.y, "y")
        _check_combinations(self)

    @property
    def x_coordinates(self) -> np.ndarray:
        return parse_axis(self.x, "x")

    @property
    def y_coordinates(self) -> np.ndarray | None:
        return None if self.y is None else parse_axis(self.y, "y")

    @property
    def is_2d(self) -> bool:
        return self.y is not None

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test") if self.split == "both" else (self.split,)

    @property
    def average_count(self) -> int:
        return self.average if self.average >= 2 else 1

    def identity(self) -> dict[str, Any]:
        """Options that change the numbers: a resumed surface must match them all."""
        skip = set(SPEED_ONLY) - ({"batch_size"} if self.bn_train_mode else set())
        return {k: v for k, v in self.to_attrs().items() if k not in skip}

    def to_attrs(self) -> dict[str, Any]:
        """HDF5-storable values (None -> "", paths made absolute)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("to", "via") and value:
                value = _absolute_reference(value)
            out[f.name] = "" if value is None else str(value) if f.name == "checkpoint" else value
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> SurfaceOptions:
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in attrs:
                continue
            value = attrs[f.name]
            value = value.item() if isinstance(value, np.generic) else value
            value = value.decode() if isinstance(value, bytes) else value
            kwargs[f.name] = None if value == "" and f.default is None else value
        return cls(**kwargs)


def option_help(name: str) -> dict[str, Any]:
    """The rules and help of one option, for CLI arguments and app forms."""
    for f in dataclasses.fields(SurfaceOptions):
        if f.name == name:
            return dict(f.metadata)
    raise KeyError(name)


def parse_run_reference(spec: str) -> tuple[str, int | str]:
    """``"other.h5:12"`` -> ("other.h5", 12); ``"other.h5"`` -> ("other.h5", "final")."""
    path, sep, tail = spec.rpartition(":")
    if sep and path and (tail.isdigit() or tail == "final"):
        return path, int(tail) if tail.isdigit() else "final"
    return spec, "final"


def _absolute_reference(spec: str) -> str:
    path, epoch = parse_run_reference(spec)
    return f"{os.path.abspath(path)}:{epoch}"


def _checkpoint(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ConfigError("checkpoint", value, "an epoch number >= 0 or 'final'", SOURCE)
    if isinstance(value, (int, np.integer)) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if value == "final":
        return value
    raise ConfigError("checkpoint", value, "an epoch number >= 0 or 'final'", SOURCE)


def _check_field(f: dataclasses.Field, value: Any) -> None:
    meta, kind = f.metadata, str(f.type)  # annotations are strings (postponed evaluation)
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise ConfigError(f.name, value, "a whole number", SOURCE)
    if kind == "bool" and not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f.name, value, "true or false", SOURCE)
    if kind == "str" and not isinstance(value, str):
        raise ConfigError(f.name, value, "a string", SOURCE)
    if kind == "str | None" and value is not None and not isinstance(value, str):
        raise ConfigError(f.name, value, "a string or nothing", SOURCE)
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f.name, value, "one of " + ", ".join(map(repr, meta["choices"])), SOURCE)
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f.name, value, f"a whole number >= {meta['min']}", SOURCE)


def _check_combinations(o: SurfaceOptions) -> None:
    method = o.directions
    if method == "pca" and o.y is None:
        raise ConfigError("y", None, "a y axis (MIN:MAX:N): PCA directions span a 2D plane", SOURCE)
    if method == "init" and o.y is not None:
        raise ConfigError("y", o.y, "no y axis: init -> final interpolation is a 1D curve", SOURCE)
    if method == "interpolate" and not o.to:
        raise ConfigError("to", o.to, "OTHER_RUN.h5[:EPOCH] for directions = 'interpolate'", SOURCE)
    if method == "interpolate" and o.y is not None and not o.via:
        raise ConfigError(
            "via", o.via, "THIRD_RUN.h5[:EPOCH]: a 2D interpolation is the plane through three models", SOURCE
        )
    if method == "interpolate" and o.via and o.y is None:
        raise ConfigError("y", o.y, "a y axis (MIN:MAX:N) when --via gives a third model", SOURCE)
    for key in ("to", "via"):
        if getattr(o, key) and method != "interpolate":
            raise ConfigError(key, getattr(o, key), f"no --{key} unless directions = 'interpolate'", SOURCE)
    if o.average >= 2 and (method != "random" or o.y is not None):
        raise ConfigError(
            "average",
            o.average,
            "0 or 1 unless the surface is a 1D curve along random "
            "directions (averaging is for 1D random curves)",
            SOURCE,
        )
