"""Sharpness of a minimum from loss values around it.

* eps-sharpness (Keskar et al. 2017): the largest loss in the box ``|delta_i| <= eps (|theta_i| + 1)``,
  as ``100 (max L - L) / (1 + L)``, found by projected (sign-)gradient ascent from a seeded
  random start; ``adaptive`` is the scale-invariant form of Kwon et al. 2021 (ASAM), the loss rise
  ``max L - L`` in the box ``|delta_i| <= eps |theta_i|``, which a layer-wise rescaling of a ReLU
  net leaves unchanged.
* Average sharpness: the mean loss rise over random filter-normalised directions ``d`` (Li et al.
  2018) at radius ``r``: ``E[L(theta + r d)] - L(theta)``.
* Flat-region fraction, after Hochreiter & Schmidhuber's flat minima: the fraction of those random
  perturbations whose loss stays within ``threshold`` of ``L(theta)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call

from engine.analysis.curvature import CurvatureProblem, Progress
from engine.errors import ConfigError
from engine.events import ProgressEvent, Stopwatch
from engine.landscape.directions.build import random_direction
from engine.landscape.directions.params import ParamVector
from engine.training.losses import loss_function


def mean_loss(problem: CurvatureProblem, params: Mapping[str, Tensor], grad: bool = False,
              ) -> tuple[float, dict[str, Tensor] | None]:
    """The mean loss at ``params`` (and its gradient w.r.t. them when ``grad``)."""
    loss_fn, count = loss_function(problem.loss), len(problem.inputs)
    leaves = {n: t.detach().requires_grad_(grad) for n, t in params.items()}
    device = next(iter(leaves.values())).device
    total, grads = 0.0, {n: torch.zeros_like(t) for n, t in leaves.items()} if grad else None
    problem.model.eval()
    with torch.set_grad_enabled(grad):
        for start in range(0, count, problem.batch_size):
            x = problem.inputs[start:start + problem.batch_size].to(device)
            y = problem.targets[start:start + problem.batch_size].to(device)
            loss = loss_fn(functional_call(problem.model, leaves, (x,)), y, reduction="sum") / count
            total += float(loss.detach().double())
            if grads is not None:
                for g, piece in zip(grads.values(), torch.autograd.grad(loss, list(leaves.values()))):
                    g += piece
    return total, grads


def eps_sharpness(problem: CurvatureProblem, epsilon: float = 1e-3, steps: int = 10, seed: int = 0,
                  adaptive: bool = False, progress: Progress | None = None) -> dict[str, object]:
    """Keskar et al.'s eps-sharpness (or Kwon et al.'s adaptive form) by projected gradient ascent."""
    if not epsilon > 0 or steps < 1:
        raise ConfigError("epsilon" if not epsilon > 0 else "sharpness_steps", epsilon if not epsilon > 0 else steps,
                          "a number > 0" if not epsilon > 0 else "an integer >= 1")
    progress, clock = progress or Progress(), Stopwatch()
    theta = {n: t.detach() for n, t in problem.parameters().items()}
    half = {n: epsilon * (t.abs() if adaptive else t.abs() + 1) for n, t in theta.items()}
    gen = torch.Generator().manual_seed(int(seed) + 15485863)
    delta = {n: (torch.rand(t.shape, generator=gen, dtype=torch.float64).to(t) * 2 - 1) * half[n]
             for n, t in theta.items()}
    base, _ = mean_loss(problem, theta)
    best = base
    stage = "adaptive sharpness" if adaptive else "sharpness"
    for step in range(steps):
        if progress.cancel is not None:
            progress.cancel.raise_if_cancelled()
        value, grads = mean_loss(problem, {n: theta[n] + delta[n] for n in theta}, grad=True)
        best = max(best, value)
        for n in theta:  # an l-inf step: the box is the constraint, sign steps reach its corners
            delta[n] = torch.clamp(delta[n] + 0.5 * half[n] * grads[n].sign(), -half[n], half[n])
        progress.on_event(ProgressEvent(stage, step + 1, steps + 1, clock()))
    best = max(best, mean_loss(problem, {n: theta[n] + delta[n] for n in theta})[0])
    progress.on_event(ProgressEvent(stage, steps + 1, steps + 1, clock()))
    value = best - base if adaptive else 100.0 * (best - base) / (1.0 + base)
    return {"epsilon": epsilon, "value": value, "adaptive": adaptive, "loss": base, "max_loss": best,
            "steps": steps}


def random_perturbations(problem: CurvatureProblem, radius: float = 0.1, count: int = 20,
                         threshold: float = 0.1, seed: int = 0, norm: str = "filter",
                         progress: Progress | None = None) -> dict[str, dict[str, object]]:
    """Average sharpness and the flat-region fraction over ``count`` seeded random directions,
    filter-normalised as in Li et al. (biases and batch-norm tensors left unperturbed)."""
    if not radius > 0 or count < 1:
        raise ConfigError("radius" if not radius > 0 else "perturbations", radius if not radius > 0 else count,
                          "a number > 0" if not radius > 0 else "an integer >= 1")
    progress, clock = progress or Progress(), Stopwatch()
    theta = {n: t.detach() for n, t in problem.parameters().items()}
    origin = ParamVector({n: t.to("cpu", torch.float32) for n, t in theta.items()})
    base, _ = mean_loss(problem, theta)
    rises = []
    for index in range(count):
        if progress.cancel is not None:
            progress.cancel.raise_if_cancelled()
        d = random_direction(origin, seed, index, norm, "biasbn")
        moved = {n: theta[n] + radius * d[n].to(theta[n]) for n in theta}
        rises.append(mean_loss(problem, moved)[0] - base)
        progress.on_event(ProgressEvent("random perturbations", index + 1, count, clock()))
    rise = np.asarray(rises)
    common = {"radius": radius, "perturbations": count, "norm": norm, "loss": base}
    return {
        "average_sharpness": {**common, "value": float(rise.mean()), "std": float(rise.std())},
        "flat_fraction": {**common, "threshold": threshold, "value": float(np.mean(rise <= threshold))},
    }
