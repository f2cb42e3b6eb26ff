"""Every option of a surface computation, declared once (engine.schema), shared by the CLI, API and app.

Each field's rules (choices, minimum, help, when it applies) live in its declaration; the CLI
builds its flags from it (``engine.schema.add_options``) and the app its form, so no option is
checked twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.checks import check_surface_options
from engine.errors import ConfigError
from engine.landscape.directions.params import DIR_TYPES, IGNORES, NORMS
from engine.landscape.grid import parse_axis
from engine.schema import Settings, epoch_or_final, equals, given, not_given, setting, setting_named

METHODS = ("random", "pca", "interpolate", "init", "hessian")
ORTHOGONALIZE = ("pick", "gram-schmidt")
SPLITS = ("train", "test", "both")
DEVICES = ("auto", "cpu", "cuda")
SOURCE = "surface options"
# Options that only change how fast the same numbers are computed: a resumed surface may differ here.
SPEED_ONLY = ("device", "batch_size", "compile", "threads", "workers")
PRECISIONS = ("fp32", "bf16", "fp16", "tf32")


_opt = setting
RANDOM = equals("directions", "random")
INTERPOLATE = equals("directions", "interpolate")


def _axis(name: str) -> Any:
    def check(spec: str) -> str:
        parse_axis(spec, name)  # raises a ConfigError that explains the MIN:MAX:N form
        return spec

    return check


@dataclass(frozen=True)
class SurfaceOptions(Settings):
    SOURCE = SOURCE
    checkpoint: int | str = _opt("final", "epoch of the run to look around, or 'final'", check=epoch_or_final,
                                 metavar="EPOCH|final")
    x: str = _opt("-1:1:51", "x axis as MIN:MAX:N (write --x=-1:1:51 on the command line)", check=_axis("x"),
                  metavar="MIN:MAX:N", label="x (α) grid")
    y: str | None = _opt(None, "y axis as MIN:MAX:N; leave out for a 1D curve", check=_axis("y"),
                         metavar="MIN:MAX:N", label="y (β) grid")
    directions: str = _opt(
        "random",
        "random directions, PCA of the training trajectory, interpolation "
        "to another run (--to, --via), from the initialisation (init) or along the top Hessian "
        "eigenvectors (hessian: unit vectors, alpha and beta are distances)",
        choices=METHODS,
    )
    to: str | None = _opt(None, "interpolate: OTHER_RUN.h5[:EPOCH], alpha = 1 is this model",
                          applies=INTERPOLATE, metavar="RUN.h5[:EPOCH]", label="Interpolate to")
    via: str | None = _opt(None, "interpolate in 2D: THIRD_RUN.h5[:EPOCH], beta = 1 is this model",
                           applies=INTERPOLATE & given("y"), metavar="RUN.h5[:EPOCH]", label="Via (2D plane)")
    via_curve: str | None = _opt(
        None, "interpolate in 2D: CURVE.h5 written by 'losslab connect' between this run and --to; the plane "
        "through both and the curve's bend, with the curve drawn on it", applies=INTERPOLATE & given("y"),
        metavar="CURVE.h5", label="Via curve (2D plane)",
    )
    norm: str = _opt(
        "filter", "random directions: rescale each filter, layer or nothing to the model", choices=NORMS,
        applies=RANDOM, label="Normalisation",
    )
    ignore: str = _opt(
        "biasbn",
        "random and PCA directions: biasbn leaves biases and batch-norm tensors (dim <= 1) unperturbed; "
        "interpolations always move every tensor",
        choices=IGNORES, applies=equals("directions", "random", "pca", "hessian"), label="Leave out",
    )
    dir_type: str = _opt(
        "weights",
        "weights: parameters; states: parameters + BN running mean/var (use states to interpolate "
        "between models with batch norm)",
        choices=DIR_TYPES, label="Direction type",
    )
    candidates: int = _opt(50, "random 2D: pick the most orthogonal pair of this many directions", min=2,
                           applies=RANDOM & given("y"), label="K candidates")
    orthogonalize: str = _opt(
        "pick", "random 2D: pick the most orthogonal pair, or Gram-Schmidt", choices=ORTHOGONALIZE,
        applies=RANDOM & given("y"),
    )
    split: str = _opt("both", "data to evaluate: train, test or both in one pass", choices=SPLITS)
    hessian: bool = _opt(False, "also store the Hessian's largest and smallest eigenvalue at every point "
                         "(max_eig, min_eig; loss of the first split; a Lanczos run per point)",
                         label="Hessian eigenvalues")
    subset: int = _opt(0, "evaluate a seeded random subset of N samples per split (0 = all)", min=0,
                       label="Subset (0 = all)")
    average: int = _opt(0, "1D: average the curve over N random directions (mean and std; 0 = off)", min=0,
                        applies=RANDOM & not_given("y"), label="Average over")
    seed: int = _opt(0, "seed for directions and the subset", min=0)
    device: str = _opt("auto", "where to evaluate", choices=DEVICES)
    batch_size: int = _opt(0, "samples per forward pass (0 = choose from the model and the memory)", min=0)
    precision: str = _opt(
        "fp32",
        "bf16/fp16: forward pass under autocast (faster, loss summed in fp32/fp64, values differ "
        "slightly); tf32: fp32 with TF32 matrix products (NVIDIA GPUs); fp32 is exact",
        choices=PRECISIONS,
    )
    workers: int = _opt(0, "CPU worker processes evaluating points in parallel (0 = one per usable core: "
                        "CPU affinity, cgroup quota, OMP_NUM_THREADS); the numbers do not depend on it", min=0)
    threads: int = _opt(0, "torch threads per worker process (0 = 1: single-threaded workers do not "
                        "slow down when other work shares the cores)", min=0)
    compile: bool = _opt(False, "torch.compile the model: a slow start (~40 s on a CPU), pays on large grids")
    bn_train_mode: bool = _opt(
        False,
        "evaluate batch-norm with batch statistics instead of the "
        "running ones (eval mode is the default, as in loss-landscape)",
        label="BN batch statistics",
    )

    def check_combinations(self) -> None:
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
        """HDF5-storable values (None -> "", run references made absolute, checkpoint as text)."""
        out = super().to_attrs()
        for key in ("to", "via"):
            if out[key]:
                out[key] = _absolute_reference(out[key])
        out["checkpoint"] = str(out["checkpoint"])
        if out["via_curve"]:
            out["via_curve"] = os.path.abspath(out["via_curve"])
        return out


def option_help(name: str) -> dict[str, Any]:
    """The rules and help of one option, for CLI arguments and app forms."""
    return dict(setting_named(SurfaceOptions, name).meta)


def parse_run_reference(spec: str) -> tuple[str, int | str]:
    """``"other.h5:12"`` -> ("other.h5", 12); ``"other.h5"`` -> ("other.h5", "final")."""
    path, sep, tail = spec.rpartition(":")
    if sep and path and (tail.isdigit() or tail == "final"):
        return path, int(tail) if tail.isdigit() else "final"
    return spec, "final"


def _absolute_reference(spec: str) -> str:
    path, epoch = parse_run_reference(spec)
    return f"{os.path.abspath(path)}:{epoch}"


def _check_combinations(o: SurfaceOptions) -> None:
    method = o.directions
    _check_via_curve(o)
    if method == "pca" and o.y is None:
        raise ConfigError("y", None, "a y axis (MIN:MAX:N): PCA directions span a 2D plane", SOURCE)
    if method == "init" and o.y is not None:
        raise ConfigError("y", o.y, "no y axis: init -> final interpolation is a 1D curve", SOURCE)
    if method == "interpolate" and not o.to:
        raise ConfigError("to", o.to, "OTHER_RUN.h5[:EPOCH] for directions = 'interpolate'", SOURCE)
    if method == "interpolate" and o.y is not None and not (o.via or o.via_curve):
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
    check_surface_options(o, SOURCE)  # sizes and thread counts this machine can hold


def _check_via_curve(o: SurfaceOptions) -> None:
    """--via-curve: the plane through this run, --to and the bend of the curve between them."""
    if not o.via_curve:
        return
    if o.directions != "interpolate" or o.y is None:
        raise ConfigError("via_curve", o.via_curve, "directions = 'interpolate' with --to (the curve's other end) "
                          "and a y axis", SOURCE)
    if o.via:
        raise ConfigError("via", o.via, "no --via with --via-curve (the curve's bend is the third point)", SOURCE)
    if o.dir_type != "weights":
        raise ConfigError("dir_type", o.dir_type, "'weights' with --via-curve (a curve's bends hold the "
                          "parameters only)", SOURCE)
