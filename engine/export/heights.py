"""The one rule for a surface's displayed height and colours, shared by the 3D view, the
heatmap and every export (PNG, movie, VTK), so a picture shows what the view shows.

Order follows loss-landscape's plotters: values above ``zmax`` are clamped first (its
``vmax``/``zmax`` threshold, in the metric's own units), then ``log10`` is taken, then
the result is multiplied by ``zscale``. NaN (not computed) stays NaN.

:class:`HeightRule` adds what a picture needs beyond that: the z range (from the data,
never from a fixed colour range, so fixing colours does not change the relief), the colour
range (fixed or the z range), the contour levels, and the vertical scale that draws the
z range at :data:`HEIGHT_FRACTION` of the wider side of the α-β plane times ``zscale``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError

# log10 of values at or below this floor is drawn as log10(LOG_FLOOR) = -12: a loss of
# exactly 0 (or a negative float error) then shows as a deep but finite pit.
LOG_FLOOR = 1e-12
# z extent / wider side of the α-β plane at zscale 1: a readable relief without tuning.
HEIGHT_FRACTION = 0.5


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
    """Refuse heights that would draw nothing sensible (errors use the settings' names)."""
    for key, value in (("clamp_max", zmax), ("z_scale", zscale)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(key, value, "a number")
    if zmax is not None and not math.isfinite(zmax):
        raise ConfigError("clamp_max", zmax, "a finite number in the metric's units")
    if zmax is not None and log and zmax <= LOG_FLOOR:
        raise ConfigError("clamp_max", zmax, "a positive number when log_scale is on (heights are log10 of values)")
    if not (math.isfinite(zscale) and zscale > 0):
        raise ConfigError("z_scale", zscale, "a finite number > 0")


def height_label(metric: str, log: bool) -> str:
    """How the displayed height is described in scalar bars and axis labels."""
    return f"log10 {metric}" if log else metric


@dataclass(frozen=True)
class HeightRule:
    """Settings that decide heights and colours, named as in ExportOptions and the app's
    DisplaySettings (one meaning, one name).

    ``color_range`` and ``levels`` are in the metric's units, like ``clamp_max``; ``contours`` is
    the number of evenly spaced levels used when ``levels`` is empty.
    """

    log_scale: bool = False
    clamp_max: float | None = None
    z_scale: float = 1.0
    color_range: tuple[float, float] | None = None
    contours: int = 10
    levels: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_height_options(self.log_scale, self.clamp_max, self.z_scale)

    def shown(self, values: np.ndarray) -> np.ndarray:
        """Values in display units (clamped, log10 if asked); NaN stays NaN.

        With ``log_scale``, values at or below 0 (an accuracy of exactly 0) are floored at the
        smallest positive value present rather than at LOG_FLOOR, whose -12 pit would squash
        every other colour.
        """
        raw = np.asarray(values, dtype=float)
        if self.log_scale:
            positive = raw[np.isfinite(raw) & (raw > 0)]
            floor = float(positive.min()) if positive.size else LOG_FLOOR
            raw = np.where(raw <= 0, floor, raw)  # NaN <= 0 is False: pending stays NaN
        return display_z(raw, log=self.log_scale, zmax=self.clamp_max)

    def to_display(self, value: float) -> float:
        """One metric-unit number (a level, a colour limit) in display units."""
        return float(display_z(np.array([value]), log=self.log_scale, zmax=self.clamp_max)[0])

    def z_range(self, shown: Sequence[np.ndarray]) -> tuple[float, float]:
        """(low, high) of the drawable display values of one or more surfaces (never empty)."""
        finite = [a[np.isfinite(a)] for a in map(np.asarray, shown)]
        finite = [a for a in finite if a.size]
        if not finite:
            return 0.0, 1.0
        return _widened(float(min(a.min() for a in finite)), float(max(a.max() for a in finite)))

    def color_limits(self, shown: Sequence[np.ndarray]) -> tuple[float, float]:
        """(low, high) colour range in display units: the fixed one if set, else the z range."""
        if self.color_range is None:
            return self.z_range(shown)
        return _widened(*(self.to_display(v) for v in self.color_range))

    def contour_levels(self, low: float, high: float) -> np.ndarray:
        """Levels in display units: the explicit ones, else ``contours`` inside (low, high)."""
        if self.levels:
            return np.array(sorted(self.to_display(v) for v in self.levels))
        if self.contours <= 0:
            return np.empty(0)
        return np.linspace(low, high, self.contours + 2)[1:-1]

    def vertical_scale(self, x: np.ndarray, y: np.ndarray, z_range: tuple[float, float]) -> float:
        """Scene units per display unit: the z range spans HEIGHT_FRACTION × the wider side × z_scale."""
        span = max(float(np.ptp(x)), float(np.ptp(y)), 1e-12)
        return HEIGHT_FRACTION * span * self.z_scale / (z_range[1] - z_range[0])


def _widened(low: float, high: float) -> tuple[float, float]:
    """A range with some width: a flat surface gets ±0.5 around its value."""
    if high - low < 1e-12 * max(1.0, abs(high)):
        return low - 0.5, high + 0.5
    return low, high
