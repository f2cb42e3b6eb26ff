"""Curves between two models in parameter space (Garipov et al. 2018) and the plane they span.

A curve with ``k`` bends has the control points ``A, bend_1, ..., bend_k, B``. The quadratic
Bézier curve of Garipov et al. is the case ``k = 1`` of the Bernstein form
``theta(t) = sum_i C(n, i) t^i (1 - t)^(n - i) P_i`` (``n = k + 1``); the polygonal chain
visits the control points at ``t = i / n`` and runs straight in between. Both are linear in
their control points, so a point on the curve is a weighted sum with :func:`control_weights`.

The curve file (``losslab connect``) stores the bends under ``bends/<k>/<parameter name>``.
:func:`curve_plane_directions` spans the plane through A, B and a bend (origin A, x = B - A,
y = bend - A), so alpha = 1 is B and (alpha, beta) = (0, 1) the bend, and projects the curve
onto it; for one Bézier bend the curve lies in that plane at (t^2, 2 t (1 - t)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from engine.errors import ConfigError, RunFileError
from engine.landscape.directions.params import ParamVector, difference

CURVE_FORMAT = "losslab-curve"
CURVES = ("bezier", "polychain")


def control_weights(curve: str, bends: int, t: float) -> list[float]:
    """Weights of the control points ``A, bend_1..bend_k, B`` at ``t`` in [0, 1]."""
    n = bends + 1
    if curve == "bezier":
        return [math.comb(n, i) * t**i * (1.0 - t) ** (n - i) for i in range(n + 1)]
    if curve == "polychain":
        segment = min(int(t * n), n - 1)
        local = t * n - segment
        weights = [0.0] * (n + 1)
        weights[segment] = 1.0 - local
        weights[segment + 1] = local
        return weights
    raise ValueError(f"unknown curve {curve!r}; expected one of {CURVES}")


@dataclass
class StoredCurve:
    """What the surface needs from a curve file: its family, bends and end-point fingerprints."""

    path: Path
    curve: str
    bends: list[ParamVector]
    fingerprint_a: str
    fingerprint_b: str


def read_stored_curve(path: str | Path) -> StoredCurve:
    """The bends of a curve file written by ``losslab connect`` (parameters only)."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"'{path}': curve file not found")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != CURVE_FORMAT:
                raise RunFileError(f"'{path}': not a LossLab curve file (attribute format != {CURVE_FORMAT!r})")
            order = [str(n) for n in f.attrs["parameter_names"]]
            bends = [ParamVector({k: torch.from_numpy(np.array(f[f"bends/{i}/{k}"][()], dtype=np.float32))
                                  for k in order}) for i in range(int(f.attrs["bends"]))]
            return StoredCurve(path, str(f.attrs["curve"]), bends, str(f.attrs["fingerprint_a"]),
                               str(f.attrs["fingerprint_b"]))
    except (OSError, KeyError) as exc:
        raise RunFileError(f"'{path}': cannot read the curve file ({exc})") from exc


@dataclass
class CurvePath:
    """The curve's points in the plane's coordinates (alpha along B - A, beta along bend - A)."""

    t: np.ndarray
    path: np.ndarray  # (len(t), 2)
    distance: np.ndarray  # distance of each curve point from the plane (0 for one Bézier bend)


def plane_bend(curve: StoredCurve) -> ParamVector:
    """The control point that spans the plane: the middle bend."""
    return curve.bends[(len(curve.bends) - 1) // 2]


def project_curve(a: ParamVector, x: ParamVector, y: ParamVector, controls: list[ParamVector],
                  curve: str, t: np.ndarray) -> CurvePath:
    """Least-squares coordinates of curve points ``A + alpha x + beta y`` (linear in the controls)."""
    offsets = [p.clone().sub_(a) for p in controls]
    gram = np.array([[x.dot(x), x.dot(y)], [y.dot(x), y.dot(y)]])
    inner = np.array([[o.dot(x), o.dot(y)] for o in offsets])  # (controls, 2)
    cross = np.array([[o.dot(p) for p in offsets] for o in offsets])
    weights = np.array([control_weights(curve, len(controls) - 2, float(s)) for s in t])
    path = np.linalg.solve(gram, (weights @ inner).T).T
    squared = np.einsum("ti,ij,tj->t", weights, cross, weights) - np.einsum("ti,ti->t", path, weights @ inner)
    return CurvePath(np.asarray(t, dtype=float), path, np.sqrt(np.clip(squared, 0.0, None)))


def check_curve_ends(curve: StoredCurve, a: ParamVector, b: ParamVector, a_name: str, b_name: str) -> None:
    for name, vector, stored in ((a_name, a, curve.fingerprint_a), (b_name, b, curve.fingerprint_b)):
        if vector.fingerprint() != stored:
            raise RunFileError(f"'{curve.path}' was trained between other end points than {a_name} and "
                               f"{b_name}: {name} differs from the stored end point")


def curve_plane(a: ParamVector, b: ParamVector, curve: StoredCurve, a_name: str, b_name: str,
                samples: int = 41) -> tuple[ParamVector, ParamVector, CurvePath]:
    """x = B - A, y = bend - A and the curve projected onto that plane."""
    if list(a) != list(curve.bends[0]):
        raise ConfigError("dir_type", "states", "'weights' with --via-curve: the curve's bends hold the "
                          "parameters only", str(curve.path))
    check_curve_ends(curve, a, b, a_name, b_name)
    x = difference(a, b, a_name, b_name)
    y = difference(a, plane_bend(curve), a_name, str(curve.path))
    controls = [a, *curve.bends, b]
    return x, y, project_curve(a, x, y, controls, curve.curve, np.linspace(0.0, 1.0, samples))
