"""How a surface is displayed: one validated, Qt-free settings object shared by every view.

The controls panel edits a :class:`DisplaySettings`; the 3D, heatmap, curve and comparison
views only read it. Values given in the metric's own units (``clamp_max``, ``color_range``,
``contour_levels``) are what the user reads in the hover label, whatever the log toggle says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import ConfigError
from engine.export.heights import height_label
from engine.schema import Settings, is_off, is_on, setting, setting_named

COLORMAPS = (
    "viridis", "plasma", "inferno", "magma", "cividis", "turbo", "jet", "coolwarm",
    "RdYlBu_r", "Spectral_r", "terrain", "gist_earth", "ocean", "bone", "gray",
)
SOURCE = "display settings"


def _low_below_high(bounds: tuple[float, float]) -> tuple[float, float]:
    if bounds[0] >= bounds[1]:
        raise ValueError(f"low < high (low {bounds[0]:g} must be below high {bounds[1]:g})")
    return bounds


@dataclass(frozen=True)
class DisplaySettings(Settings):
    """Everything the views need to draw a surface; immutable, change with :meth:`replace`."""

    SOURCE = SOURCE

    metric: str = setting("", "metric drawn as height and colour ('' = the first loss metric)", label="Metric")
    log_scale: bool = setting(False, "draw log10(value) so orders of magnitude stay readable",
                              label="Log scale (log10)")
    clamp_max: float | None = setting(None, "clamp values above this (metric units; None = off)",
                                      label="Clamp above")
    z_scale: float = setting(1.0, "height multiplier; 1 = z extent is 40 % of the wider side of the α-β plane",
                             min=0.01, max=100.0, label="Z scale")
    colormap: str = setting("viridis", "colour map of heights", choices=COLORMAPS, label="Colour map")
    color_range: tuple[float, float] | None = setting(
        None, "fixed (low, high) colour range in metric units; None = from the data", check=_low_below_high,
        label="Fixed colour range",
    )
    light_kit: bool = setting(True, "five-light studio kit; off = a single headlight", label="Light kit")
    specular: float = setting(0.3, "shine of highlights", min=0.0, max=1.0, applies=is_off("pbr"),
                              label="Specular")
    smooth_shading: bool = setting(True, "interpolate normals across cells", label="Smooth shading")
    pbr: bool = setting(False, "physically based rendering", label="Physically based (PBR)")
    metallic: float = setting(0.2, "PBR metalness", min=0.0, max=1.0, applies=is_on("pbr"), label="Metallic")
    roughness: float = setting(0.45, "PBR roughness", min=0.0, max=1.0, applies=is_on("pbr"), label="Roughness")
    eye_dome_lighting: bool = setting(False, "depth-edge shading that brings out relief", label="Eye-dome lighting")
    contour_count: int = setting(10, "evenly spaced contour levels (0 = none)", min=0, max=100,
                                 label="Levels (count)")
    contour_levels: tuple[float, ...] = setting((), "explicit levels in metric units; override contour_count "
                                                "when given", label="Levels (values)")
    contours_on_surface: bool = setting(True, "contour lines drawn on the surface", label="On the surface")
    contours_below: bool = setting(True, "contours projected onto a floor under the surface",
                                   label="Projected below")
    show_trajectory: bool = setting(True, "the PCA training path, when the surface has one", label="Show trajectory")
    fill_holes: bool = setting(False, "interpolate uncomputed points for display only",
                               label="Fill pending points (display only)")
    mark_uncomputed: bool = setting(True, "grey dots on the floor where points are pending",
                                    label="Mark pending points")
    show_scalar_bar: bool = setting(True, "the colour bar next to the surface", label="Colour bar")

    def metric_label(self, metric: str) -> str:
        """The name shown on colour bars and axes, e.g. ``log10 train_loss`` (as the exports say)."""
        return height_label(metric, self.log_scale)


def field_help(name: str) -> str:
    """The tooltip text for one settings field."""
    try:
        return setting_named(DisplaySettings, name).help
    except KeyError:
        raise ConfigError("field", name, "a DisplaySettings field", SOURCE) from None


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
