"""PCA of the training trajectory (Li et al. 2018 §7; the visualisation thesis §4.4).

Rows are ``theta_e - theta_c`` for every stored epoch ``e`` before the chosen checkpoint
``c``. The two directions are the top right-singular vectors of that matrix; the rows are
*not* mean-centred (loss-landscape's sklearn PCA centres them) because the plane must pass
through ``theta_c``, the centre of the surface. The explained-variance ratio is therefore
``s_k^2 / sum(s^2)``. Each checkpoint's path coordinate is the projection of
``theta_e - theta_c`` onto the directions, so the checkpoint itself sits at (0, 0).

Both directions are scaled by the same factor so that the path just fits in [-1, 1]
(``scale`` = their length); the default ``-1:1`` grid then shows the whole trajectory.
Signs are fixed so the earliest checkpoint has positive coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import ConfigError
from engine.landscape.directions.params import ParamVector
from engine.landscape.directions.source import ModelSource

_CHUNK = 1 << 22  # parameters per float64 block while forming the Gram matrix


@dataclass
class TrajectoryPCA:
    origin: ParamVector  # the checkpoint at the centre
    x: ParamVector  # first component, length ``scale``
    y: ParamVector  # second component, length ``scale``
    explained_variance_ratio: np.ndarray  # (2,)
    epochs: np.ndarray  # (K,) every checkpoint on the path, the centre last
    path: np.ndarray  # (K, 2) coordinates in units of x and y
    scale: float


def principal_plane(rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor]:
    """Top-2 SVD of ``rows`` (K, P): (singular values, left vectors (K, 2), energy ratios,
    unit components (2, P) float64), computed from the K x K Gram matrix in float64."""
    gram = torch.zeros(len(rows), len(rows), dtype=torch.float64)
    for c in range(0, rows.shape[1], _CHUNK):
        block = rows[:, c : c + _CHUNK].double()
        gram += block @ block.T
    eigenvalues, vectors = torch.linalg.eigh(gram)
    top = torch.argsort(eigenvalues, descending=True)[:2]
    energy = eigenvalues[top].clamp(min=0)
    left = vectors[:, top]
    left = left * torch.where(left[0] < 0, -1.0, 1.0)  # earliest checkpoint: positive coordinates
    singular = energy.sqrt()
    components = torch.zeros(2, rows.shape[1], dtype=torch.float64)
    for c in range(0, rows.shape[1], _CHUNK):
        components[:, c : c + _CHUNK] = left.T @ rows[:, c : c + _CHUNK].double()
    components /= singular.clamp(min=1e-300)[:, None]
    total = float(eigenvalues.clamp(min=0).sum())
    ratio = (energy / total).numpy() if total > 0 else np.zeros(2)
    return singular.numpy(), left.numpy(), ratio, components


def trajectory_pca(source: ModelSource, checkpoint: int | str, dir_type: str, ignore: str) -> TrajectoryPCA:
    """PCA directions of the path from the first stored epoch to ``checkpoint``."""
    centre = source.resolve(checkpoint)
    epochs = [e for e in source.epochs if e <= centre]
    if len(epochs) < 3:
        raise ConfigError(
            "directions",
            "pca",
            f"a run with at least 3 stored checkpoints up to epoch {centre}; "
            f"{source.name} has {len(epochs)} (epochs {', '.join(map(str, epochs))})",
            source.name,
        )
    origin = source.vector(centre, dir_type)
    rows = torch.stack(
        [
            source.vector(e, dir_type, cache=False).clone().sub_(origin).zero_ignored_(ignore).flatten()
            for e in epochs[:-1]
        ]
    )
    singular, left, ratio, components = principal_plane(rows)
    if singular[1] <= 1e-12 * max(singular[0], 1e-300):
        raise ConfigError(
            "directions",
            "pca",
            f"a trajectory that spans a plane; the checkpoints of "
            f"{source.name} lie on one line, so PCA has no second direction",
            source.name,
        )
    path = np.vstack([left * singular, np.zeros((1, 2))])
    scale = float(np.abs(path).max())
    x, y = (_unflatten(origin, components[k] * scale) for k in range(2))
    return TrajectoryPCA(origin, x, y, ratio, np.asarray(epochs), path / scale, scale)


def _unflatten(like: ParamVector, flat: torch.Tensor) -> ParamVector:
    out, start = {}, 0
    for k, t in like.items():
        out[k] = flat[start : start + t.numel()].view(t.shape).to(torch.float32).clone()
        start += t.numel()
    return ParamVector(out)
