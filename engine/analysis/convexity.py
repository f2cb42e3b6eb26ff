"""Li et al.'s convexity map: |lambda_min / lambda_max| over a surface computed with ``--hessian``.

Near 0 the loss is (close to) convex at that point; large values mark pronounced negative
curvature. Points where either eigenvalue is pending, or lambda_max <= 0, are NaN.
"""

from __future__ import annotations

import numpy as np

from engine.storage.surface_file import Surface

EIGEN_METRICS = ("max_eig", "min_eig")


def has_eigenvalues(surface: Surface) -> bool:
    return all(m in surface.values for m in EIGEN_METRICS)


def convexity_ratio(surface: Surface, signed: bool = False) -> np.ndarray:
    """``|min_eig / max_eig|`` per grid point (``signed``: ``min_eig / max_eig``, for a diverging map)."""
    top = np.asarray(surface.values["max_eig"], dtype=float)
    low = np.asarray(surface.values["min_eig"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(top) & np.isfinite(low) & (top > 0), low / top, np.nan)
    return ratio if signed else np.abs(ratio)
