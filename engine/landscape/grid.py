"""Grid axes (``MIN:MAX:N``) and the order in which surface points are evaluated.

Points are visited coarse to fine: first every 8th index on each axis (always including
the last one, so the coarse surface spans the whole range), then every 4th, 2nd and
finally every remaining point. Each point is visited once; a complete low-resolution
surface therefore exists early and sharpens while the job runs.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np

from engine.errors import ConfigError

STRIDES = (8, 4, 2, 1)


def parse_axis(spec: str, key: str = "x") -> np.ndarray:
    """``"-1:1:51"`` -> 51 evenly spaced coordinates from -1 to 1 (inclusive)."""
    expected = "MIN:MAX:N with numbers MIN <= MAX and a whole number N >= 1, e.g. -1:1:51"
    parts = str(spec).strip().split(":")
    if len(parts) != 3:
        raise ConfigError(key, spec, expected)
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(key, spec, expected) from None
    try:
        count = int(parts[2])
    except ValueError:
        raise ConfigError(
            key, spec, f"a whole number of points N (found {parts[2]!r}) in {expected}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(key, spec, f"finite MIN and MAX in {expected}")
    if count < 1:
        raise ConfigError(key, spec, f"at least one point (N = {count}) in {expected}")
    if low > high:
        raise ConfigError(key, spec, f"MIN <= MAX (found {low:g} > {high:g}) in {expected}")
    if count > 1 and low == high:
        raise ConfigError(key, spec, f"MIN < MAX for N = {count} points (MIN = MAX = {low:g})")
    if count == 1 and low != high:
        raise ConfigError(key, spec, f"MIN = MAX for a single point, or N >= 2 (found {spec!r})")
    return np.linspace(low, high, count)


def axis_levels(n: int, strides: tuple[int, ...] = STRIDES) -> list[list[int]]:
    """Indices of each stride's sub-grid on an axis of ``n`` points (the last index always included)."""
    return [sorted(set(range(0, n, s)) | {n - 1}) for s in strides]


def progressive_order(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every index of an array of ``shape`` (1 or 2 axes), coarse sub-grids first, each once."""
    if len(shape) not in (1, 2) or min(shape) < 1:
        raise ValueError(f"progressive_order needs a 1-D or 2-D shape of positive sizes, got {shape}")
    seen: set[tuple[int, ...]] = set()
    order: list[tuple[int, ...]] = []
    per_axis = [axis_levels(n) for n in shape]
    for level in range(len(STRIDES)):
        for index in product(*(levels[level] for levels in per_axis)):
            if index not in seen:
                seen.add(index)
                order.append(index)
    return order


def averaged_order(count: int, n: int) -> list[tuple[int, int]]:
    """Points ``(k, i)`` of ``count`` directions x ``n`` coordinates: coarse coordinates first,
    all directions at a coordinate together so its mean and spread are complete early."""
    return [(k, i) for (i,) in progressive_order((n,)) for k in range(count)]
