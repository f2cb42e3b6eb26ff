"""Directions spanning a 1D line or a 2D plane through parameter space, all seeded.

* random: Gaussian per tensor, normalised (filter | layer | none) against the centre model;
  in 2D the pair is the most orthogonal two of K candidates (``pick``) or Gram-Schmidt.
* pca: the top two components of the training trajectory (see :mod:`engine.landscape.directions.pca`).
* interpolate: from this run's checkpoint A to another model B (x = B - A, so alpha = 1 is B),
  and in 2D the plane through three models (y = C - A).
* init: from the run's initialisation (alpha = 0) to the checkpoint (alpha = 1).
* hessian: the top Hessian eigenvectors (see :mod:`engine.landscape.directions.hessian`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import ConfigError
from engine.landscape.directions.curve import CurvePath, curve_plane, read_stored_curve
from engine.landscape.directions.hessian import hessian_directions
from engine.landscape.directions.params import ParamVector, difference
from engine.landscape.directions.pca import TrajectoryPCA, trajectory_pca
from engine.landscape.directions.source import ModelSource, as_source
from engine.landscape.options import SOURCE, SurfaceOptions, parse_run_reference

_GRAM_BUDGET_BYTES = 1 << 29  # candidates held at once while picking the most orthogonal pair


@dataclass
class Directions:
    """The centre of the grid and the direction(s) along its axes."""

    method: str
    origin: ParamVector  # the model at alpha = beta = 0
    xs: list[ParamVector]  # the x direction; N of them for averaged 1D curves
    y: ParamVector | None = None
    cosine: float = float("nan")  # between x and y (NaN in 1D)
    pca: TrajectoryPCA | None = None
    picked: tuple[int, int] | None = None  # candidate indices of a picked random pair
    curve: CurvePath | None = None  # a connect curve projected onto the plane (--via-curve)

    @property
    def x(self) -> ParamVector:
        return self.xs[0]

    def fingerprint(self) -> str:
        parts = [v.fingerprint() for v in self.xs] + ([self.y.fingerprint()] if self.y is not None else [])
        return ":".join(parts)


def candidate_seed(seed: int, index: int) -> int:
    """An independent generator seed for random direction ``index`` of a surface seeded ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def random_direction(origin: ParamVector, seed: int, index: int, norm: str, ignore: str) -> ParamVector:
    """Gaussian direction number ``index``, normalised against ``origin``."""
    generator = torch.Generator().manual_seed(candidate_seed(seed, index))
    return origin.randn_like(generator).normalize_(origin, norm, ignore)


def most_orthogonal_pair(cosines: np.ndarray) -> tuple[int, int]:
    """Indices ``i < j`` of the smallest ``|cosine|`` (the first such pair on ties)."""
    upper = np.triu(np.ones_like(cosines, dtype=bool), k=1)
    masked = np.where(upper, np.abs(cosines), np.inf)
    i, j = np.unravel_index(int(np.argmin(masked)), masked.shape)
    return int(i), int(j)


def candidate_cosines(make: Callable[[int], torch.Tensor], count: int, numel: int) -> np.ndarray:
    """Cosine matrix of ``count`` flattened candidates, regenerated in blocks to bound memory."""
    block = max(1, min(count, _GRAM_BUDGET_BYTES // max(1, 16 * numel)))
    gram = np.zeros((count, count))
    for a0 in range(0, count, block):
        a = torch.stack([make(k) for k in range(a0, min(a0 + block, count))]).double()
        for b0 in range(a0, count, block):
            b = a if b0 == a0 else torch.stack([make(k) for k in range(b0, min(b0 + block, count))]).double()
            g = (a @ b.T).numpy()
            gram[a0 : a0 + len(a), b0 : b0 + len(b)] = g
            gram[b0 : b0 + len(b), a0 : a0 + len(a)] = g.T
    scale = np.sqrt(np.clip(np.diag(gram), 1e-300, None))
    return gram / np.outer(scale, scale)


def gram_schmidt(x: ParamVector, y: ParamVector) -> ParamVector:
    """``y`` minus its projection on ``x``, rescaled to ``y``'s original norm (so its size
    stays comparable to the filter-normalised ``x``; filter norms then hold only roughly)."""
    length = y.norm()
    out = y.clone().add_(x, alpha=-y.dot(x) / x.dot(x))
    remaining = out.norm()
    return out.scale_(length / remaining) if remaining > 0 else out


def random_directions(origin: ParamVector, o: SurfaceOptions) -> Directions:
    """1D: one direction (or ``average`` of them); 2D: a picked or Gram-Schmidt pair."""

    def make(index: int) -> ParamVector:
        return random_direction(origin, o.seed, index, o.norm, o.ignore)

    if not o.is_2d:
        return Directions("random", origin, [make(k) for k in range(o.average_count)])
    if o.orthogonalize == "gram-schmidt":
        x = make(0)
        y = gram_schmidt(x, make(1))
        return Directions("random", origin, [x], y, x.cosine(y), picked=(0, 1))
    cosines = candidate_cosines(lambda k: make(k).flatten(), o.candidates, origin.numel)
    i, j = most_orthogonal_pair(cosines)
    return Directions("random", origin, [make(i)], make(j), float(cosines[i, j]), picked=(i, j))


def interpolation_directions(
    a: ModelSource,
    a_epoch: int | str,
    b: ModelSource,
    b_epoch: int | str,
    dir_type: str,
    c: ModelSource | None = None,
    c_epoch: int | str = "final",
) -> Directions:
    """theta(alpha, beta) = A + alpha (B - A) + beta (C - A): alpha = 1 is B, beta = 1 is C."""
    origin = a.vector(a_epoch, dir_type)
    a_name = f"{a.name} (epoch {a.resolve(a_epoch)})"
    x = difference(origin, b.vector(b_epoch, dir_type), a_name, f"{b.name} (epoch {b.resolve(b_epoch)})")
    if c is None:
        return Directions("interpolate", origin, [x])
    y = difference(origin, c.vector(c_epoch, dir_type), a_name, f"{c.name} (epoch {c.resolve(c_epoch)})")
    return Directions("interpolate", origin, [x], y, x.cosine(y))


def init_directions(source: ModelSource, checkpoint: int | str, dir_type: str) -> Directions:
    """Goodfellow et al.: alpha = 0 is the initialisation, alpha = 1 the checkpoint."""
    if 0 not in source.epochs:
        raise ConfigError(
            "directions",
            "init",
            f"a run that stored its initialisation (epoch 0); "
            f"{source.name} starts at epoch {source.epochs[0]}",
            SOURCE,
        )
    directions = interpolation_directions(source, 0, source, checkpoint, dir_type)
    directions.method = "init"
    return directions


def hessian_plane(source: ModelSource, o: SurfaceOptions) -> Directions:
    """x (and y in 2D) along the top Hessian eigenvectors at the checkpoint."""
    origin, vectors, _ = hessian_directions(source, o.checkpoint, o.dir_type, o.ignore, o.splits[0], o.subset,
                                            o.seed, 2 if o.is_2d else 1)
    y = vectors[1] if o.is_2d else None
    return Directions("hessian", origin, [vectors[0]], y, vectors[0].cosine(y) if y is not None else float("nan"))


def curve_plane_directions(source: ModelSource, o: SurfaceOptions,
                           open_run: Callable[[str], ModelSource]) -> Directions:
    """The plane through this run (A), --to (B) and the bend of the curve between them (Garipov et al.)."""
    b_path, b_epoch = parse_run_reference(o.to or "")
    b = open_run(b_path)
    a_vector, b_vector = source.vector(o.checkpoint, "weights"), b.vector(b_epoch, "weights")
    x, y, path = curve_plane(a_vector, b_vector, read_stored_curve(o.via_curve or ""),
                             f"{source.name} (epoch {source.resolve(o.checkpoint)})",
                             f"{b.name} (epoch {b.resolve(b_epoch)})")
    return Directions("interpolate", a_vector, [x], y, x.cosine(y), curve=path)


def build_directions(
    source: ModelSource, o: SurfaceOptions, open_run: Callable[[str], ModelSource] = as_source
) -> Directions:
    """The directions ``o`` asks for, around ``o.checkpoint`` of ``source``."""
    if o.directions == "random":
        return random_directions(source.vector(o.checkpoint, o.dir_type), o)
    if o.directions == "pca":
        pca = trajectory_pca(source, o.checkpoint, o.dir_type, o.ignore)
        return Directions("pca", pca.origin, [pca.x], pca.y, pca.x.cosine(pca.y), pca=pca)
    if o.directions == "init":
        return init_directions(source, o.checkpoint, o.dir_type)
    if o.directions == "hessian":
        return hessian_plane(source, o)
    if o.via_curve:
        return curve_plane_directions(source, o, open_run)
    b_path, b_epoch = parse_run_reference(o.to or "")
    c = parse_run_reference(o.via) if o.via else None
    return interpolation_directions(
        source,
        o.checkpoint,
        open_run(b_path),
        b_epoch,
        o.dir_type,
        open_run(c[0]) if c else None,
        c[1] if c else "final",
    )
