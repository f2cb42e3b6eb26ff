"""Surface arrays turned into what the views draw: display values, heights, contours, probes.

Qt-free and VTK-free so it can be tested alone. Heights and colours follow the engine's one
rule (:class:`engine.export.heights.HeightRule`), which PNG and movie exports use too;
:func:`height_rule` is the one place that reads the app's :class:`DisplaySettings` for it.
NaN means "not computed yet" everywhere: it is carried through every transform and never
replaced by a number, except by :func:`fill_for_display`, whose result is only drawn, never stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import contourpy
import numpy as np

from app.display import DisplaySettings
from engine.errors import ConfigError
from engine.export.heights import HEIGHT_FRACTION, HeightRule
from engine.storage.surface_file import Surface

__all__ = ["HEIGHT_FRACTION", "HeightMap", "Probe", "Surface", "SurfaceLike", "height_rule"]

SurfaceLike = Surface  # the one surface type; this old name stays for code not yet moved to Surface

FLOOR_GAP = 0.2  # gap between the surface's lowest point and the contour floor, in heights
FILL_STEPS = 8  # hole filling reaches this many points from the nearest computed one


def height_rule(settings: DisplaySettings) -> HeightRule:
    """The engine's height/colour rule for the app's display settings (names adapted here only)."""
    return HeightRule(log_scale=settings.log_scale, clamp_max=settings.clamp_max, z_scale=settings.z_scale,
                      color_range=settings.color_range, contours=settings.contour_count,
                      levels=tuple(settings.contour_levels))


def pick_metric(surface: Surface, wanted: str = "", strict: bool = False) -> str:
    """``wanted`` if the surface has it, else its first loss metric ('' asks for the default).

    A metric chosen while another surface was shown is a preference, not a requirement:
    unless ``strict``, a surface without it shows its default metric instead.
    """
    names = list(surface.values)
    if not names:
        raise ConfigError("metric", wanted, "a surface with at least one metric", _where(surface))
    if wanted in names:
        return wanted
    if wanted and strict:
        raise ConfigError("metric", wanted, f"one of {', '.join(names)}", _where(surface))
    return next((n for n in names if "loss" in n), names[0])


def accuracy_metric(surface: Surface, split: str = "test") -> str | None:
    """The surface's accuracy metric, preferring ``split`` (e.g. test_acc over train_acc)."""
    accs = [n for n in surface.values if "acc" in n]
    return next((n for n in accs if split in n), accs[0] if accs else None)


def display_values(values: np.ndarray, settings: DisplaySettings) -> np.ndarray:
    """Clamp, then log10 if asked, by the engine's rule (as the exporters do); NaN stays NaN."""
    return height_rule(settings).shown(values)


def to_display_units(value: float, settings: DisplaySettings) -> float:
    """One metric-unit number (a level, a colour limit) in the units the views draw."""
    return height_rule(settings).to_display(value)


def fill_for_display(shown: np.ndarray, steps: int = FILL_STEPS) -> np.ndarray:
    """Pending points filled from computed neighbours (display only; 2D grids).

    Each step gives every pending point with computed 4-neighbours their mean: a point between
    two computed ones gets their average, a cell centre the mean of its four edges, which is
    linear / bilinear interpolation on a grid filled coarse to fine. Gaps wider than about
    ``2 * steps`` points stay pending rather than being invented.
    """
    filled = np.array(shown, dtype=float)
    for _ in range(steps):
        pending = np.isnan(filled)
        if not pending.any() or pending.all():
            break
        padded = np.pad(filled, 1, constant_values=np.nan)
        around = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        count = np.isfinite(around).sum(axis=0)
        reachable = pending & (count > 0)
        if not reachable.any():
            break
        filled[reachable] = np.nansum(around, axis=0)[reachable] / count[reachable]
    return filled


def color_limits(arrays: list[np.ndarray], settings: DisplaySettings) -> tuple[float, float]:
    """(low, high) in display units: the fixed range if set, else min/max over all arrays."""
    return height_rule(settings).color_limits(arrays)


def z_range(arrays: list[np.ndarray], settings: DisplaySettings) -> tuple[float, float]:
    """(low, high) of the drawn heights in display units: always the data's, whatever the colours."""
    return height_rule(settings).z_range(arrays)


def contour_levels(settings: DisplaySettings, low: float, high: float) -> np.ndarray:
    """Levels in display units: the explicit ones, else ``contour_count`` inside (low, high)."""
    return height_rule(settings).contour_levels(low, high)


def contour_lines(
    x: np.ndarray, y: np.ndarray, shown: np.ndarray, levels: np.ndarray
) -> list[tuple[float, list[np.ndarray]]]:
    """For each level, the (N, 2) α-β polylines; lines stop at uncomputed points."""
    if not levels.size or np.isfinite(shown).sum() < 4:
        return []
    masked = np.ma.masked_invalid(shown)
    gen = contourpy.contour_generator(x, y, masked, line_type=contourpy.LineType.Separate)
    return [(float(level), [seg for seg in gen.lines(level) if len(seg) > 1]) for level in levels]


@dataclass(frozen=True)
class HeightMap:
    """Maps display values to scene heights: ``low`` (the data's lowest value) sits at 0 and the
    data's range spans the rule's vertical extent, whatever the colour range is."""

    low: float
    high: float
    height: float

    def __call__(self, shown: np.ndarray | float) -> np.ndarray:
        return (np.asarray(shown, dtype=float) - self.low) / (self.high - self.low) * self.height

    @property
    def floor(self) -> float:
        return -FLOOR_GAP * self.height


def height_map(x: np.ndarray, y: np.ndarray, z_range: tuple[float, float], settings: DisplaySettings) -> HeightMap:
    """Heights for a surface whose display values span ``z_range`` (from :func:`z_range`)."""
    scale = height_rule(settings).vertical_scale(x, y, z_range)
    return HeightMap(z_range[0], z_range[1], scale * (z_range[1] - z_range[0]))


@dataclass(frozen=True)
class Probe:
    """The grid point nearest to where the user points, with every metric's raw value."""

    alpha: float
    beta: float | None
    index: tuple[int, ...]
    values: dict[str, float]

    def describe(self) -> str:
        where = f"α = {self.alpha:.4g}" + ("" if self.beta is None else f", β = {self.beta:.4g}")
        parts = [f"{name} = {_format_value(name, v)}" for name, v in self.values.items()]
        return ", ".join([where, *parts])


def probe(surface: Surface, alpha: float, beta: float | None = None) -> Probe:
    """The nearest grid point to (α, β); β is ignored for 1D surfaces."""
    i = int(np.argmin(np.abs(np.asarray(surface.x) - alpha)))
    if surface.y is None:
        return Probe(float(surface.x[i]), None, (i,), {k: float(v[i]) for k, v in surface.values.items()})
    j = int(np.argmin(np.abs(np.asarray(surface.y) - (beta or 0.0))))
    values = {k: float(v[j, i]) for k, v in surface.values.items()}
    return Probe(float(surface.x[i]), float(surface.y[j]), (j, i), values)


def centre_values(surface: Surface) -> dict[str, float]:
    """Every metric at the grid point nearest the origin (the trained model)."""
    return probe(surface, 0.0, 0.0).values


def format_accuracy(value: float) -> str:
    """Accuracy as a percentage whether stored as a fraction or already in percent."""
    return f"{value * 100 if abs(value) <= 1.0 else value:.1f} %"


def _format_value(name: str, value: float) -> str:
    if math.isnan(value):
        return "not computed yet"
    return format_accuracy(value) if "acc" in name else f"{value:.4g}"


def _where(surface: Surface) -> str:
    return str(getattr(surface, "path", "") or "surface")
