"""Surface arrays turned into what the views draw: display values, heights, contours, probes.

Qt-free and VTK-free so it can be tested alone. NaN means "not computed yet" everywhere:
it is carried through every transform and never replaced by a number, except by
:func:`fill_for_display`, whose result is only drawn, never stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import contourpy
import numpy as np

from app.display import DisplaySettings
from engine.errors import ConfigError
from engine.export.heights import display_z

HEIGHT_FRACTION = 0.4  # z extent / wider side of the α-β plane at z_scale 1
FLOOR_GAP = 0.2  # gap between the surface's lowest point and the contour floor, in heights
FILL_STEPS = 8  # hole filling reaches this many points from the nearest computed one


class SurfaceLike(Protocol):
    """What the views need from ``engine.storage.surface_file.Surface``."""

    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    attrs: dict[str, Any]
    trajectory: np.ndarray | None


@dataclass
class SurfaceSnapshot:
    """A view's own copy of a surface, so live updates never write into the caller's object."""

    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    attrs: dict[str, Any]
    trajectory: np.ndarray | None
    path: str = ""

    @classmethod
    def copy_of(cls, surface: SurfaceLike) -> SurfaceSnapshot:
        y = None if surface.y is None else np.asarray(surface.y, dtype=float)
        return cls(
            np.asarray(surface.x, dtype=float), y,
            {k: np.array(v, dtype=float) for k, v in surface.values.items()},
            {k: np.array(v, dtype=float) for k, v in (surface.std or {}).items()},
            dict(surface.attrs or {}),
            None if surface.trajectory is None else np.asarray(surface.trajectory, dtype=float),
            str(getattr(surface, "path", "") or ""),
        )

    def update_values(self, values: dict[str, np.ndarray]) -> None:
        """Replace metric arrays in place; shapes must match the grid."""
        shape = (len(self.x),) if self.y is None else (len(self.y), len(self.x))
        for name, array in values.items():
            if np.shape(array) != shape:
                raise ConfigError(f"values[{name!r}]", np.shape(array), f"an array of shape {shape}",
                                  self.path or "surface update")
        self.values.update({k: np.array(v, dtype=float) for k, v in values.items()})


def pick_metric(surface: SurfaceLike, wanted: str = "") -> str:
    """``wanted`` if the surface has it, else its first loss metric ('' asks for the default)."""
    names = list(surface.values)
    if not names:
        raise ConfigError("metric", wanted, "a surface with at least one metric", _where(surface))
    if wanted:
        if wanted not in names:
            raise ConfigError("metric", wanted, f"one of {', '.join(names)}", _where(surface))
        return wanted
    return next((n for n in names if "loss" in n), names[0])


def accuracy_metric(surface: SurfaceLike, split: str = "test") -> str | None:
    """The surface's accuracy metric, preferring ``split`` (e.g. test_acc over train_acc)."""
    accs = [n for n in surface.values if "acc" in n]
    return next((n for n in accs if split in n), accs[0] if accs else None)


def display_values(values: np.ndarray, settings: DisplaySettings) -> np.ndarray:
    """Clamp, then log10 if asked, exactly as the exporters do (``display_z``); NaN stays NaN."""
    raw = np.asarray(values, dtype=float)
    if settings.log_scale:
        raw = np.where(raw <= 0, _log_floor(raw), raw)  # NaN <= 0 is False: pending stays NaN
    return display_z(raw, log=settings.log_scale, zmax=settings.clamp_max, zscale=1.0)


def to_display_units(value: float, settings: DisplaySettings) -> float:
    """One metric-unit number (a level, a colour limit) in the units the views draw."""
    return float(display_values(np.array([value]), settings)[0])


def _log_floor(values: np.ndarray) -> float:
    # Accuracy can be exactly 0: on screen, floor it at the smallest positive value seen
    # rather than display_z's 1e-12, whose -12 pit would squash every other colour.
    positive = values[np.isfinite(values) & (values > 0)]
    return float(positive.min()) if positive.size else 1e-12


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
    if settings.color_range is not None:
        low, high = (to_display_units(v, settings) for v in settings.color_range)
    else:
        finite = [a[np.isfinite(a)] for a in arrays]
        finite = [a for a in finite if a.size]
        if not finite:
            return 0.0, 1.0
        low = float(min(a.min() for a in finite))
        high = float(max(a.max() for a in finite))
    if high - low < 1e-12 * max(1.0, abs(high)):
        low, high = low - 0.5, high + 0.5
    return low, high


def contour_levels(settings: DisplaySettings, low: float, high: float) -> np.ndarray:
    """Levels in display units: the explicit ones, else ``contour_count`` inside (low, high)."""
    if settings.contour_levels:
        return np.array(sorted(to_display_units(v, settings) for v in settings.contour_levels))
    if settings.contour_count == 0:
        return np.empty(0)
    return np.linspace(low, high, settings.contour_count + 2)[1:-1]


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
    """Maps display values to scene heights so the relief has a readable aspect ratio."""

    low: float
    high: float
    height: float

    def __call__(self, shown: np.ndarray | float) -> np.ndarray:
        return (np.asarray(shown, dtype=float) - self.low) / (self.high - self.low) * self.height

    @property
    def floor(self) -> float:
        return -FLOOR_GAP * self.height


def height_map(x: np.ndarray, y: np.ndarray, limits: tuple[float, float], z_scale: float) -> HeightMap:
    span = max(float(np.ptp(x)), float(np.ptp(y)), 1e-12)
    return HeightMap(limits[0], limits[1], HEIGHT_FRACTION * span * z_scale)


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


def probe(surface: SurfaceLike, alpha: float, beta: float | None = None) -> Probe:
    """The nearest grid point to (α, β); β is ignored for 1D surfaces."""
    i = int(np.argmin(np.abs(np.asarray(surface.x) - alpha)))
    if surface.y is None:
        return Probe(float(surface.x[i]), None, (i,), {k: float(v[i]) for k, v in surface.values.items()})
    j = int(np.argmin(np.abs(np.asarray(surface.y) - (beta or 0.0))))
    values = {k: float(v[j, i]) for k, v in surface.values.items()}
    return Probe(float(surface.x[i]), float(surface.y[j]), (j, i), values)


def centre_values(surface: SurfaceLike) -> dict[str, float]:
    """Every metric at the grid point nearest the origin (the trained model)."""
    return probe(surface, 0.0, 0.0).values


def format_accuracy(value: float) -> str:
    """Accuracy as a percentage whether stored as a fraction or already in percent."""
    return f"{value * 100 if abs(value) <= 1.0 else value:.1f} %"


def _format_value(name: str, value: float) -> str:
    if math.isnan(value):
        return "not computed yet"
    return format_accuracy(value) if "acc" in name else f"{value:.4g}"


def _where(surface: SurfaceLike) -> str:
    return str(getattr(surface, "path", "") or "surface")
