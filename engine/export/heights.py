"""The displayed height of a surface: clamp, optional log10, vertical scale.

Order follows loss-landscape's plotters: values above ``zmax`` are clamped first (its
``vmax``/``zmax`` threshold, in the metric's own units), then ``log10`` is taken, then
the result is multiplied by ``zscale``. NaN (not computed) stays NaN.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import ConfigError

# log10 of values at or below this floor is drawn as log10(LOG_FLOOR) = -12: a loss of
# exactly 0 (or a negative float error) then shows as a deep but finite pit.
LOG_FLOOR = 1e-12


def display_z(
    values: np.ndarray, log: bool = False, zmax: float | None = None, zscale: float = 1.0
) -> np.ndarray:
    """Heights to draw for ``values``: ``zscale * log10(max(min(v, zmax), LOG_FLOOR))``.

    Without ``log`` the log step is skipped. ``+inf`` (a diverged point) is clamped to
    ``zmax`` when one is given, otherwise it stays infinite and is not drawn.
    """
    check_height_options(log, zmax, zscale)
    z = np.array(values, dtype=np.float64)
    if zmax is not None:
        z = np.minimum(z, zmax)  # np.minimum keeps NaN
    if log:
        with np.errstate(invalid="ignore"):
            z = np.log10(np.maximum(z, LOG_FLOOR))
    return z * zscale


def check_height_options(log: bool, zmax: float | None, zscale: float) -> None:
    """Refuse heights that would draw nothing sensible."""
    for key, value in (("zmax", zmax), ("zscale", zscale)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(key, value, "a number")
    if zmax is not None and not math.isfinite(zmax):
        raise ConfigError("zmax", zmax, "a finite number in the metric's units")
    if zmax is not None and log and zmax <= LOG_FLOOR:
        raise ConfigError("zmax", zmax, "a positive number when --log is on (heights are log10 of values)")
    if not (math.isfinite(zscale) and zscale > 0):
        raise ConfigError("zscale", zscale, "a finite number > 0")


def height_label(metric: str, log: bool) -> str:
    """How the displayed height is described in scalar bars and axis labels."""
    return f"log10 {metric}" if log else metric
