"""Flatness of a minimum: Hessian spectrum and trace, and the rise of a computed surface.

The Hessian is never formed: every measure uses Hessian-vector products (double backward)
on the loss averaged over all the given samples, so it works for any model size. The core
routines (:func:`top_eigenvalues`, :func:`hutchinson_trace`) take any symmetric ``hvp`` on
flat vectors; the model wrappers build that ``hvp`` from a model, data and a loss name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from engine.errors import ConfigError, LossLabError, RunFileError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.storage.surface_file import Surface
from engine.training.losses import LOSSES, loss_function

Hvp = Callable[[Tensor], Tensor]


# ---- core: any symmetric operator on flat vectors ------------------------------------------
def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _orthogonalise(v: Tensor, basis: list[Tensor]) -> Tensor:
    for u in basis:
        v = v - torch.dot(u, v) * u
    return v


def top_eigenvalues(hvp: Hvp, dim: int, k: int = 1, iterations: int = 50, tol: float = 1e-4,
                    seed: int = 0, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> list[float]:
    """The ``k`` eigenvalues of largest magnitude (signed), by power iteration with deflation.

    Each eigenvector found is projected out of the next start vector and iterate, so eigenvalue
    ``i`` is the dominant one of the operator restricted to the complement of the first ``i``.
    An eigenvalue stops early once its relative change falls below ``tol``.
    """
    if k < 1 or k > dim:
        raise ConfigError("top_k", k, f"an integer from 1 to the number of parameters ({dim})")
    gen = _generator(seed)
    found: list[Tensor] = []
    values: list[float] = []
    for _ in range(k):
        v = _orthogonalise(torch.randn(dim, generator=gen, dtype=torch.float64).to(device, dtype), found)
        v = v / v.norm()
        value = math.nan
        for _ in range(iterations):
            hv = _orthogonalise(hvp(v), found)
            new_value = float(torch.dot(v, hv))
            norm = hv.norm()
            if norm == 0:  # v lies in the null space: the remaining spectrum is zero
                new_value, value = 0.0, 0.0
                break
            v = hv / norm
            if not math.isnan(value) and abs(new_value - value) <= tol * (abs(value) + 1e-12):
                value = new_value
                break
            value = new_value
        found.append(v)
        values.append(value)
    return values


def hutchinson_trace(hvp: Hvp, dim: int, samples: int = 50, seed: int = 0,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> tuple[float, float]:
    """Hutchinson's estimate of tr(H): mean and standard error of ``vᵀHv`` over Rademacher ``v``."""
    if samples < 1:
        raise ConfigError("trace_samples", samples, "an integer >= 1")
    gen = _generator(seed)
    estimates = []
    for _ in range(samples):
        v = (torch.randint(0, 2, (dim,), generator=gen) * 2 - 1).to(device, dtype)
        estimates.append(float(torch.dot(v, hvp(v))))
    values = np.asarray(estimates)
    spread = float(values.std(ddof=1) / math.sqrt(samples)) if samples > 1 else math.nan
    return float(values.mean()), spread


# ---- model wrappers -------------------------------------------------------------------------
def hessian_parameters(model: nn.Module, ignore_biasbn: bool = False) -> list[nn.Parameter]:
    """Trainable parameters the Hessian is taken over; ``ignore_biasbn`` drops tensors of dim <= 1."""
    return [p for p in model.parameters() if p.requires_grad and not (ignore_biasbn and p.dim() <= 1)]


def model_hvp(model: nn.Module, inputs: Tensor, targets: Tensor, loss_name: str,
              batch_size: int = 512, ignore_biasbn: bool = False) -> tuple[Hvp, int]:
    """``(hvp, dim)``: Hessian-vector products of the mean loss over all of ``inputs``.

    Batches add ``sum loss / N`` so one call equals the full-data Hessian times ``v``.
    """
    if loss_name not in LOSSES:
        raise ConfigError("loss", loss_name, " or ".join(repr(n) for n in LOSSES))
    if len(inputs) == 0:
        raise LossLabError("no samples to take the Hessian over; expected at least one")
    loss_fn = loss_function(loss_name)
    params = hessian_parameters(model, ignore_biasbn)
    if not params:
        raise LossLabError("the model has no trainable parameters to take the Hessian over")
    device = params[0].device
    count = len(inputs)
    model.eval()  # dropout off and batch-norm statistics fixed: the Hessian of one function

    def hvp(v: Tensor) -> Tensor:
        pieces = list(torch.split(v, [p.numel() for p in params]))
        vs = [piece.view_as(p) for piece, p in zip(pieces, params)]
        total = torch.zeros_like(v)
        for start in range(0, count, batch_size):
            x = inputs[start:start + batch_size].to(device)
            y = targets[start:start + batch_size].to(device)
            loss = loss_fn(model(x), y, reduction="sum") / count
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * u).sum() for g, u in zip(grads, vs))
            hv = torch.autograd.grad(dot, params, allow_unused=True)
            total += torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                                for h, p in zip(hv, params)])
        return total

    return hvp, sum(p.numel() for p in params)


def _reporting(hvp: Hvp, total: int, on_event: EventSink, cancel: CancelToken | None,
               clock: Stopwatch, done: list[int]) -> Hvp:
    """Wraps ``hvp`` to emit one ``hessian`` event per product and honour ``cancel``."""

    def wrapped(v: Tensor) -> Tensor:
        if cancel is not None:
            cancel.raise_if_cancelled()
        out = hvp(v)
        done[0] += 1
        on_event(ProgressEvent("hessian", min(done[0], total), total, clock()))
        return out

    return wrapped


def hessian_top_eigenvalues(model: nn.Module, inputs: Tensor, targets: Tensor, loss_name: str,
                            k: int = 1, iterations: int = 50, tol: float = 1e-4, seed: int = 0,
                            batch_size: int = 512, ignore_biasbn: bool = False,
                            on_event: EventSink = ignore_events,
                            cancel: CancelToken | None = None) -> list[float]:
    """Top-``k`` Hessian eigenvalues (largest magnitude) of the mean loss at the model's weights."""
    hvp, dim = model_hvp(model, inputs, targets, loss_name, batch_size, ignore_biasbn)
    total = k * iterations
    clock, done = Stopwatch(), [0]
    hvp = _reporting(hvp, total, on_event, cancel, clock, done)
    param = hessian_parameters(model, ignore_biasbn)[0]
    values = top_eigenvalues(hvp, dim, k, iterations, tol, seed, param.dtype, param.device)
    if done[0] < total:  # converged early: close the progress bar
        on_event(ProgressEvent("hessian", total, total, clock()))
    return values


def hessian_trace(model: nn.Module, inputs: Tensor, targets: Tensor, loss_name: str,
                  samples: int = 50, seed: int = 0, batch_size: int = 512, ignore_biasbn: bool = False,
                  on_event: EventSink = ignore_events,
                  cancel: CancelToken | None = None) -> tuple[float, float]:
    """Hutchinson estimate ``(mean, standard error)`` of the Hessian trace of the mean loss."""
    hvp, dim = model_hvp(model, inputs, targets, loss_name, batch_size, ignore_biasbn)
    hvp = _reporting(hvp, samples, on_event, cancel, Stopwatch(), [0])
    param = hessian_parameters(model, ignore_biasbn)[0]
    return hutchinson_trace(hvp, dim, samples, seed, param.dtype, param.device)


# ---- surface-based -------------------------------------------------------------------------
def surface_flatness(surface: Surface, metric: str = "test_loss", radius: float = 0.5) -> dict[str, float]:
    """How much ``metric`` rises around the surface centre, within ``|alpha|, |beta| <= radius``.

    The centre is the grid point nearest (0, 0); uncomputed or diverged (NaN) points are ignored.
    """
    if metric not in surface.values:
        raise ConfigError("metric", metric, "one of " + ", ".join(surface.metric_names), str(surface.path))
    if not radius > 0:
        raise ConfigError("radius", radius, "a number > 0")
    values = np.asarray(surface.values[metric], dtype=float)
    x = np.asarray(surface.x, dtype=float)
    i = int(np.argmin(np.abs(x)))
    inside = np.abs(x) <= radius
    if surface.is_2d:
        y = np.asarray(surface.y, dtype=float)
        j = int(np.argmin(np.abs(y)))
        centre = values[j, i]
        window = values[np.ix_(np.abs(y) <= radius, inside)]
    else:
        centre, window = values[i], values[inside]
    if not np.isfinite(centre):
        raise RunFileError(f"'{surface.path}': {metric} at the centre point is not computed (NaN); "
                           "expected a computed centre (resume the surface job)")
    rise = window[np.isfinite(window)] - centre
    return {"centre": float(centre), "mean_rise": float(rise.mean()) if rise.size else math.nan,
            "max_rise": float(rise.max()) if rise.size else math.nan, "points": int(rise.size),
            "radius": float(radius)}

