"""Directions along the top Hessian eigenvectors at the checkpoint (``--directions hessian``), as
Landscaper and loss-landscape-analysis draw them: x is the eigenvector of the largest eigenvalue,
y the second (Lanczos, seeded start). They are unit vectors in parameter space, so alpha and beta
are Euclidean distances; filter normalisation would break their eigenvector property. With
``ignore = biasbn`` the Hessian is taken over the weights only and biases/batch-norm tensors stay
unperturbed, as for random directions. The curvature uses the first split of ``--split``.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.curvature.operators import curvature_operator, hessian_parameters
from engine.curvature.spectrum import extreme_eigenpairs
from engine.landscape.directions.params import ParamVector
from engine.landscape.directions.source import ModelSource

HESSIAN_SAMPLES = 1000  # the seeded subset the eigenvectors come from when no --subset is given


def hessian_directions(source: ModelSource, checkpoint: int | str, dir_type: str, ignore: str, split: str,
                       subset: int, seed: int, count: int) -> tuple[ParamVector, list[ParamVector], list[float]]:
    """``(origin, eigenvectors, eigenvalues)``: the top ``count`` eigenvectors as ParamVectors."""
    # evaluation imports the direction builders: a module-level import would be circular
    from engine.landscape.evaluation.evaluate import select_subset

    origin = source.vector(checkpoint, dir_type)
    model = source.model(checkpoint)
    size = subset or HESSIAN_SAMPLES
    inputs, targets = select_subset({split: source.read_split(split)}, size, seed)[split]
    params = hessian_parameters(model, ignore_biasbn=ignore == "biasbn")
    op = curvature_operator(model, inputs, targets, source.loss, params)
    values, vectors = extreme_eigenpairs(op, count, "LA", 1e-6, seed)
    return origin, [_as_vector(vectors[:, k], origin, list(params), op.sizes) for k in range(count)], values.tolist()


def _as_vector(flat: np.ndarray, origin: ParamVector, names: list[str], sizes: list[int]) -> ParamVector:
    """A flat eigenvector laid out like ``origin``; tensors outside the Hessian are zero."""
    pieces = dict(zip(names, np.split(flat, np.cumsum(sizes)[:-1])))
    return ParamVector({k: torch.from_numpy(pieces[k].astype(np.float32)).reshape(t.shape)
                        if k in pieces else torch.zeros_like(t) for k, t in origin.items()})
