"""Curvature of the loss at a checkpoint: top-k eigenpairs, the smallest eigenvalue, the trace,
the spectral density, per layer, and the reparameterisation-invariant flatness measures.

Every number comes from products with the Hessian (or the Gauss-Newton matrix), never the
matrix itself (:mod:`engine.curvature`).

* Relative flatness (Petzka et al. 2021): ``sum_l ||W_l||_F^2 * Tr(H_l)`` over the layers' weight
  tensors, with ``H_l`` the Hessian block of ``W_l`` (Hutchinson traces).
* Scale-invariant sharpness in the quotient-manifold sense of Rangamani et al. 2019: the same
  per-layer normalisation applied to the spectral norm, ``sum_l ||W_l||_F^2 * lambda_max(H_l)``.
  Rescaling a ReLU layer by ``a`` and the next by ``1/a`` scales ``H_l`` by ``1/a^2`` and
  ``||W_l||^2`` by ``a^2``, so both measures stay put while the plain eigenvalues change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from engine.curvature.operators import CurvatureOperator, curvature_operator, hessian_parameters, layer_blocks
from engine.curvature.spectrum import (
    Counted,
    extreme_eigenpairs,
    hutchinson_trace,
    slq_density,
    smallest_eigenpair,
    smoothed_density,
)
from engine.events import CancelToken, EventSink, ignore_events


@dataclass
class CurvatureProblem:
    """The loss of ``model`` over ``inputs`` at its current weights, and how to take its curvature."""

    model: nn.Module
    inputs: Tensor
    targets: Tensor
    loss: str
    kind: str = "hessian"  # or "ggn"
    ignore_biasbn: bool = False
    batch_size: int = 512

    def parameters(self) -> dict[str, Tensor]:
        return hessian_parameters(self.model, self.ignore_biasbn)

    def operator(self, names: list[str] | None = None) -> CurvatureOperator:
        params = self.parameters()
        chosen = params if names is None else {n: params[n] for n in names}
        return curvature_operator(self.model, self.inputs, self.targets, self.loss, chosen, self.kind,
                                  self.batch_size)


@dataclass
class Progress:
    on_event: EventSink = ignore_events
    cancel: CancelToken | None = None

    def counted(self, op: CurvatureOperator, stage: str, budget: int) -> Counted:
        return Counted(op, stage, budget, self.on_event, self.cancel)


def top_eigenpairs(problem: CurvatureProblem, k: int, seed: int = 0, tol: float = 1e-6,
                   progress: Progress | None = None) -> tuple[list[float], np.ndarray]:
    """The ``k`` largest eigenvalues (largest first) and their eigenvectors ``(dim, k)`` (Lanczos)."""
    op, progress = problem.operator(), progress or Progress()
    counted = progress.counted(op, "eigenvalues", 20 * (k + 5))
    values, vectors = extreme_eigenpairs(op, k, "LA", tol, seed, matvec=counted)
    counted.finish(f"top {k} eigenvalue(s) from {counted.products} Hessian-vector products")
    return values.tolist(), vectors


def smallest_eigenvalue(problem: CurvatureProblem, largest: float, seed: int = 0, tol: float = 1e-6,
                        progress: Progress | None = None) -> float:
    """The most negative (smallest algebraic) eigenvalue, given the largest (Lanczos on the shift)."""
    op, progress = problem.operator(), progress or Progress()
    counted = progress.counted(op, "smallest eigenvalue", 120)
    value, _ = smallest_eigenpair(op, largest, tol, seed, matvec=counted)
    counted.finish()
    return value


def trace(problem: CurvatureProblem, samples: int, seed: int = 0, progress: Progress | None = None,
          names: list[str] | None = None, stage: str = "trace") -> dict[str, float]:
    op, progress = problem.operator(names), progress or Progress()
    counted = progress.counted(op, stage, samples)
    mean, error = hutchinson_trace(counted, op.dim, samples, seed, op.dtype, op.device)
    counted.finish()
    return {"mean": mean, "stderr": error, "samples": samples}


def density(problem: CurvatureProblem, steps: int = 40, runs: int = 4, seed: int = 0,
            progress: Progress | None = None) -> dict[str, object]:
    """Stochastic Lanczos quadrature: nodes and weights (summing to 1) plus a smoothed curve."""
    op, progress = problem.operator(), progress or Progress()
    counted = progress.counted(op, "density", runs * min(steps, op.dim))
    quadrature = slq_density(counted, op.dim, steps, runs, seed, op.dtype, op.device)
    counted.finish()
    return {**quadrature, **smoothed_density(quadrature["eigenvalues"], quadrature["weights"]),
            "steps": steps, "runs": runs, "dimension": op.dim}


def weight_layers(problem: CurvatureProblem) -> dict[str, str]:
    """Layer name -> its weight tensor (dim > 1), for the per-layer invariant measures."""
    params = hessian_parameters(problem.model, False)
    return {name.rpartition(".")[0] or name: name for name, t in params.items() if t.dim() > 1}


def per_layer(problem: CurvatureProblem, samples: int, seed: int = 0,
              progress: Progress | None = None) -> dict[str, dict[str, float]]:
    """Per layer (module): top eigenvalue and trace of its diagonal Hessian block."""
    progress = progress or Progress()
    out = {}
    for number, (layer, names) in enumerate(layer_blocks(list(problem.parameters())).items()):
        op = problem.operator(names)
        out[layer] = {"parameters": op.dim,
                      "top_eigenvalue": _block_top(op, seed, progress, f"layer {layer}"),
                      "trace": trace(problem, samples, seed + number, progress, names, f"trace {layer}")}
    return out


def _block_top(op: CurvatureOperator, seed: int, progress: Progress, stage: str) -> float:
    if op.dim == 1:  # ARPACK needs k < dim: a 1 x 1 block is its own eigenvalue
        return float(op.matvec(torch.ones(1, dtype=op.dtype, device=op.device))[0])
    counted = progress.counted(op, stage, 60)
    values, _ = extreme_eigenpairs(op, 1, "LA", 1e-4, seed, matvec=counted)
    counted.finish()
    return float(values[0])


def invariant_flatness(problem: CurvatureProblem, samples: int, seed: int = 0,
                       progress: Progress | None = None) -> dict[str, object]:
    """Relative flatness (Petzka et al.) and the Rangamani et al.-style scale-invariant measure."""
    progress = progress or Progress()
    params = hessian_parameters(problem.model, False)
    layers: dict[str, dict[str, float]] = {}
    for number, (layer, name) in enumerate(weight_layers(problem).items()):
        op = problem.operator([name])
        norm_sq = float(params[name].detach().double().pow(2).sum())
        block_trace = trace(problem, samples, seed + number, progress, [name], f"relative flatness {layer}")
        top = _block_top(op, seed, progress, f"scale-invariant {layer}")
        layers[layer] = {"weight_norm_sq": norm_sq, "trace": block_trace["mean"],
                         "trace_stderr": block_trace["stderr"], "top_eigenvalue": top}
    return {
        "relative_flatness": sum(v["weight_norm_sq"] * v["trace"] for v in layers.values()),
        "scale_invariant": sum(v["weight_norm_sq"] * v["top_eigenvalue"] for v in layers.values()),
        "layers": layers,
    }

