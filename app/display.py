"""How a surface is displayed: one validated, Qt-free settings object shared by every view.

The controls panel edits a :class:`DisplaySettings`; the 3D, heatmap, curve and comparison
views only read it. Values given in the metric's own units (``clamp_max``, ``color_range``,
``contour_levels``) are what the user reads in the hover label, whatever the log toggle says.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError
from engine.export.heights import height_label

COLORMAPS = (
    "viridis", "plasma", "inferno", "magma", "cividis", "turbo", "jet", "coolwarm",
    "RdYlBu_r", "Spectral_r", "terrain", "gist_earth", "ocean", "bone", "gray",
)
SOURCE = "display settings"


def _rule(default: Any, **rules: Any) -> Any:
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class DisplaySettings:
    """Everything the views need to draw a surface; immutable, change with :meth:`replace`."""

    metric: str = _rule("", help="metric drawn as height and colour ('' = the first loss metric)")
    log_scale: bool = _rule(False, help="draw log10(value) so orders of magnitude stay readable")
    clamp_max: float | None = _rule(None, help="clamp values above this (metric units; None = off)")
    z_scale: float = _rule(1.0, min=0.01, max=100.0, help="height multiplier; 1 = z extent is "
                           "40 % of the wider side of the α-β plane")
    colormap: str = _rule("viridis", choices=COLORMAPS)
    color_range: tuple[float, float] | None = _rule(None, help="fixed (low, high) colour range in "
                                                     "metric units; None = from the data")
    light_kit: bool = _rule(True, help="five-light studio kit; off = a single headlight")
    specular: float = _rule(0.3, min=0.0, max=1.0)
    smooth_shading: bool = _rule(True)
    pbr: bool = _rule(False, help="physically based rendering")
    metallic: float = _rule(0.2, min=0.0, max=1.0)
    roughness: float = _rule(0.45, min=0.0, max=1.0)
    eye_dome_lighting: bool = _rule(False, help="depth-edge shading that brings out relief")
    contour_count: int = _rule(10, min=0, max=100, help="evenly spaced contour levels (0 = none)")
    contour_levels: tuple[float, ...] = _rule((), help="explicit levels in metric units; "
                                               "override contour_count when given")
    contours_on_surface: bool = _rule(True)
    contours_below: bool = _rule(True, help="contours projected onto a floor under the surface")
    show_trajectory: bool = _rule(True, help="the PCA training path, when the surface has one")
    fill_holes: bool = _rule(False, help="interpolate uncomputed points for display only")
    mark_uncomputed: bool = _rule(True, help="grey dots on the floor where points are pending")
    show_scalar_bar: bool = _rule(True)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        if self.clamp_max is not None and not math.isfinite(self.clamp_max):
            raise ConfigError("clamp_max", self.clamp_max, "a finite number or None", SOURCE)
        if self.color_range is not None:
            _check_range(self.color_range)
        for level in self.contour_levels:
            if not math.isfinite(level):
                raise ConfigError("contour_levels", self.contour_levels, "finite numbers", SOURCE)

    def replace(self, **changes: Any) -> DisplaySettings:
        """A copy with ``changes`` applied and validated (unknown names are refused)."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in names:
                raise ConfigError(key, changes[key], f"one of {', '.join(sorted(names))}", SOURCE)
        return dataclasses.replace(self, **changes)

    def metric_label(self, metric: str) -> str:
        """The name shown on colour bars and axes, e.g. ``log10 train_loss`` (as the exports say)."""
        return height_label(metric, self.log_scale)


def field_help(name: str) -> str:
    """The tooltip text for one settings field."""
    for f in dataclasses.fields(DisplaySettings):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    raise ConfigError("field", name, "a DisplaySettings field", SOURCE)


def parse_levels(text: str) -> tuple[float, ...]:
    """'0.5, 1, 2' -> (0.5, 1.0, 2.0); a ConfigError names the item that is not a number."""
    levels = []
    for item in (t for t in text.replace(";", ",").replace(" ", ",").split(",") if t):
        try:
            level = float(item)
        except ValueError:
            level = math.nan
        if not math.isfinite(level):
            raise ConfigError("contour_levels", item, "finite numbers separated by commas, e.g. 0.5, 1, 2",
                              SOURCE)
        levels.append(level)
    return tuple(levels)


def _check_field(f: dataclasses.Field, value: Any) -> None:
    rules = f.metadata
    if "choices" in rules and value not in rules["choices"]:
        raise ConfigError(f.name, value, f"one of {', '.join(rules['choices'])}", SOURCE)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high = rules.get("min"), rules.get("max")
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f.name, value, f"a number from {low} to {high}", SOURCE)


def _check_range(color_range: tuple[float, float]) -> None:
    if len(color_range) != 2 or not all(math.isfinite(v) for v in color_range):
        raise ConfigError("color_range", color_range, "two finite numbers (low, high)", SOURCE)
    if color_range[0] >= color_range[1]:
        raise ConfigError("color_range", color_range, "low < high", SOURCE)
