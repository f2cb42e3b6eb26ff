"""Eigenvalues, trace and spectral density of a symmetric operator known by its products.

* Extreme eigenpairs: implicitly restarted Lanczos (ARPACK through ``scipy.sparse.linalg.eigsh``
  on a LinearOperator): well kept, and it finds the top-k or the smallest eigenvalue in far fewer
  products than deflated power iteration. :func:`top_eigenvalues` (power iteration, largest
  magnitude) stays for callers that want that definition.
* Trace: Hutchinson's estimator with Rademacher vectors and its standard error.
* Density: stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019; PyHessian's
  ``density``): per random start, ``m`` Lanczos steps with full reorthogonalisation; the Ritz
  values are the nodes and the squared first components of the Ritz vectors the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import Tensor

from engine.curvature.operators import CurvatureOperator
from engine.errors import ConfigError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch, ignore_events

Hvp = Callable[[Tensor], Tensor]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _start_vector(dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 104729])).standard_normal(dim)


class Counted:
    """Wraps an operator: counts products, reports them as ProgressEvents, honours ``cancel``."""

    def __init__(self, op: CurvatureOperator, stage: str, budget: int, on_event: EventSink = ignore_events,
                 cancel: CancelToken | None = None) -> None:
        self.op, self.stage, self.budget = op, stage, max(1, budget)
        self.on_event, self.cancel, self.products, self.clock = on_event, cancel, 0, Stopwatch()

    def __call__(self, v: Tensor) -> Tensor:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        out = self.op.matvec(v)
        self.products += 1
        self.on_event(ProgressEvent(self.stage, min(self.products, self.budget - 1), self.budget, self.clock()))
        return out

    def finish(self, message: str = "") -> None:
        self.on_event(ProgressEvent(self.stage, self.budget, self.budget, self.clock(), message))


def _scipy_operator(op: CurvatureOperator, matvec: Hvp) -> LinearOperator:
    def apply(x: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1)).to(op.device, op.dtype)
        return matvec(v).detach().to("cpu", torch.float64).numpy()

    return LinearOperator((op.dim, op.dim), matvec=apply, dtype=np.float64)


def extreme_eigenpairs(op: CurvatureOperator, k: int = 1, which: str = "LA", tol: float = 1e-6,
                       seed: int = 0, max_products: int = 2000, matvec: Hvp | None = None,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(values, vectors)``: the ``k`` algebraically largest (``LA``) or smallest (``SA``)
    eigenpairs, sorted largest first; ``vectors`` is ``(dim, k)``. Without convergence in
    ``max_products`` the Ritz pairs ARPACK had converged are returned (NaN if none)."""
    if not 1 <= k < op.dim:
        raise ConfigError("top_k", k, f"an integer from 1 to the number of parameters - 1 ({op.dim - 1})")
    linear = _scipy_operator(op, matvec or op.matvec)
    ncv = min(op.dim, max(2 * k + 1, 20))
    try:
        values, vectors = eigsh(linear, k=k, which=which, tol=tol, v0=_start_vector(op.dim, seed), ncv=ncv,
                                maxiter=max(1, max_products // ncv))
    except ArpackNoConvergence as exc:
        values, vectors = exc.eigenvalues, exc.eigenvectors
        if len(values) == 0:
            return np.full(k, np.nan), np.full((op.dim, k), np.nan)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def smallest_eigenpair(op: CurvatureOperator, largest: float, tol: float = 1e-6, seed: int = 0,
                       max_products: int = 2000, matvec: Hvp | None = None) -> tuple[float, np.ndarray]:
    """The smallest eigenvalue as ``largest - mu``, ``mu`` the top eigenvalue of ``largest * I - H``
    (as loss-landscape does): Lanczos then converges relative to the spectrum's width, not to
    ``|lambda_min|``, which near a minimum is tiny and float32 products cannot resolve relatively."""
    product = matvec or op.matvec
    shift = float(largest) if np.isfinite(largest) else 0.0

    def shifted(v: Tensor) -> Tensor:
        return shift * v - product(v)

    values, vectors = extreme_eigenpairs(op, 1, "LA", tol, seed, max_products, shifted)
    return shift - float(values[0]), vectors[:, 0]


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


def lanczos_tridiagonal(hvp: Hvp, start: Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal and off-diagonal of the Lanczos tridiagonal matrix after ``steps`` steps from
    ``start``, with full reorthogonalisation (kept in float64). Stops early on an invariant subspace."""
    basis = [start.double() / start.double().norm()]
    alphas: list[float] = []
    betas: list[float] = []
    for step in range(steps):
        w = hvp(basis[-1].to(start.dtype)).double()
        alpha = float(torch.dot(w, basis[-1]))
        alphas.append(alpha)
        for _ in range(2):  # twice is enough against the loss of orthogonality
            for q in basis:
                w = w - torch.dot(w, q) * q
        beta = float(w.norm())
        if step == steps - 1 or beta < 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        basis.append(w / beta)
    return np.asarray(alphas), np.asarray(betas)


def slq_density(hvp: Hvp, dim: int, steps: int = 40, runs: int = 4, seed: int = 0,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                ) -> dict[str, list[float]]:
    """Eigenvalue density by stochastic Lanczos quadrature: nodes and weights (summing to 1),
    averaged over ``runs`` Rademacher starts of ``steps`` Lanczos steps each."""
    if steps < 1 or runs < 1:
        raise ConfigError("density_steps" if steps < 1 else "density_runs", min(steps, runs), "an integer >= 1")
    gen = _generator(seed + 7907)
    nodes: list[float] = []
    weights: list[float] = []
    for _ in range(runs):
        start = (torch.randint(0, 2, (dim,), generator=gen) * 2 - 1).to(device, dtype)
        alphas, betas = lanczos_tridiagonal(hvp, start, min(steps, dim))
        tridiagonal = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        ritz, vectors = np.linalg.eigh(tridiagonal)
        nodes += ritz.tolist()
        weights += (vectors[0] ** 2 / runs).tolist()
    return {"eigenvalues": nodes, "weights": weights}


def smoothed_density(nodes: list[float], weights: list[float], points: int = 200,
                     sigma_fraction: float = 0.01) -> dict[str, list[float]]:
    """The quadrature broadened by Gaussians of width ``sigma_fraction`` of the spectrum's range,
    on a grid of ``points`` values (integrates to 1 over the grid), for plotting on a log scale."""
    low, high = float(min(nodes)), float(max(nodes))
    spread = max(high - low, 1e-12)
    sigma = sigma_fraction * spread
    grid = np.linspace(low - 5 * sigma, high + 5 * sigma, points)
    values = np.zeros(points)
    for node, weight in zip(nodes, weights):
        values += weight * np.exp(-((grid - node) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    values /= max(np.trapezoid(values, grid), 1e-300)
    return {"grid": grid.tolist(), "values": values.tolist()}


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
