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
from torch import Tensor, nn

from engine.curvature.operators import curvature_operator
from engine.curvature.operators import hessian_parameters as curvature_parameters
from engine.curvature.spectrum import hutchinson_trace, top_eigenvalues
from engine.errors import ConfigError, RunFileError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.storage.surface_file import Surface

Hvp = Callable[[Tensor], Tensor]
__all__ = ["hutchinson_trace", "top_eigenvalues", "hessian_parameters", "model_hvp", "hessian_top_eigenvalues",
           "hessian_trace", "surface_flatness", "surface_metric"]


# ---- model wrappers -------------------------------------------------------------------------
def hessian_parameters(model: nn.Module, ignore_biasbn: bool = False) -> list[nn.Parameter]:
    """Trainable parameters the Hessian is taken over; ``ignore_biasbn`` drops tensors of dim <= 1."""
    return list(curvature_parameters(model, ignore_biasbn).values())


def model_hvp(model: nn.Module, inputs: Tensor, targets: Tensor, loss_name: str,
              batch_size: int = 512, ignore_biasbn: bool = False) -> tuple[Hvp, int]:
    """``(hvp, dim)``: Hessian-vector products of the mean loss over all of ``inputs``."""
    op = curvature_operator(model, inputs, targets, loss_name, curvature_parameters(model, ignore_biasbn),
                            batch_size=batch_size)
    return op.matvec, op.dim


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
def surface_metric(surface: Surface, chosen: str | None, split: str = "test") -> str:
    """The surface metric the sub-level and rise measures read: ``chosen`` when given (refused,
    naming the surface's metrics, when the surface lacks it); else the loss of ``split`` when the
    surface has it, else its first loss metric, else its first metric."""
    names = surface.metric_names
    if chosen is not None:
        if chosen not in surface.values:
            raise ConfigError("metric", chosen, "one of " + ", ".join(names), str(surface.path))
        return chosen
    losses = [name for name in names if name.endswith("_loss")]
    preferred = [f"{split}_loss", *losses, *names]
    return next(name for name in preferred if name in surface.values)


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

