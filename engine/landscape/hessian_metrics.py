"""``max_eig`` and ``min_eig`` of the Hessian at every grid point (``losslab surface --hessian``).

Li et al. (2018) map ``|lambda_min / lambda_max|`` over a surface to show where it is non-convex;
loss-landscape stores the two eigenvalues as datasets ``max_eig`` and ``min_eig``, and so does
LossLab, in the same ``[j, i]`` orientation as the losses, NaN while a point is pending. Each
point is a Lanczos run for the largest eigenvalue and one on the shifted operator
``lambda_max I - H`` for the smallest, from a fixed start vector: the same numbers in any worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.curvature.operators import curvature_operator
from engine.curvature.spectrum import extreme_eigenpairs, smallest_eigenpair

HESSIAN_METRICS = ("max_eig", "min_eig")


@dataclass(frozen=True)
class HessianExtremes:
    """A per-point extra metric for PointEvaluator: the extreme Hessian eigenvalues of the mean
    ``loss`` over ``split`` at the evaluator's current point (picklable, for worker processes)."""

    split: str
    loss: str
    tol: float = 1e-4  # ARPACK's residual bound; eigenvalues come out far closer (error ~ residual^2)
    max_products: int = 600
    batch_size: int = 1024
    seed: int = 0
    names: tuple[str, ...] = HESSIAN_METRICS

    def __call__(self, evaluator: Any) -> dict[str, float]:
        inputs, targets = evaluator.data[self.split]
        model = evaluator.model
        params = {n: p for n, p in model.named_parameters()}
        with torch.enable_grad():
            op = curvature_operator(model, inputs, targets, self.loss, params, "hessian",
                                    min(self.batch_size, evaluator.batch_size or self.batch_size))
            top, _ = extreme_eigenpairs(op, 1, "LA", self.tol, self.seed, self.max_products)
            low, _ = smallest_eigenpair(op, float(top[0]), self.tol, self.seed, self.max_products)
        return {"max_eig": float(top[0]), "min_eig": float(low)}


def option_metrics(options: Any, loss: str) -> tuple[HessianExtremes, ...]:
    """The extra per-point metrics SurfaceOptions ask for (``hessian``: max_eig and min_eig)."""
    return (HessianExtremes(options.splits[0], loss, seed=options.seed),) if options.hessian else ()
