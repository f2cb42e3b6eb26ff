"""Sub-level sets of a computed surface and the persistence of its minima.

``{points with value <= L}`` on the grid, with 4-neighbour connectivity (the lecture slides on
Li et al. 2018 count its connected components). Components and the 0-dimensional persistent
homology of the sub-level filtration come from one union-find over the grid points in order of
value (the elder rule: when two components meet, the one born later dies). For a 2D grid this
is a few dozen lines and exact; gudhi or ripser would add a large compiled dependency for the
same numbers. Uncomputed or diverged (NaN/inf) points are never in a sub-level set.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import ConfigError, RunFileError
from engine.storage.surface_file import Surface


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = np.arange(size)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return int(root)


def _neighbours(index: int, shape: tuple[int, ...]) -> list[int]:
    if len(shape) == 1:
        return [n for n in (index - 1, index + 1) if 0 <= n < shape[0]]
    rows, cols = shape
    j, i = divmod(index, cols)
    out = []
    for dj, di in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        if 0 <= j + dj < rows and 0 <= i + di < cols:
            out.append((j + dj) * cols + i + di)
    return out


def sublevel_labels(values: np.ndarray, level: float) -> tuple[np.ndarray, int]:
    """``(labels, count)`` like ``scipy.ndimage.label``: 0 outside the set, components numbered
    1..count in order of their first point in C order."""
    values = np.asarray(values, dtype=float)
    inside = np.isfinite(values) & (values <= level)
    flat, shape = inside.ravel(), values.shape
    sets = _UnionFind(flat.size)
    for index in np.flatnonzero(flat):
        for n in _neighbours(int(index), shape):
            if n < index and flat[n]:
                a, b = sets.find(int(index)), sets.find(n)
                if a != b:
                    sets.parent[max(a, b)] = min(a, b)
    labels, numbers = np.zeros(flat.size, dtype=int), {}
    for index in np.flatnonzero(flat):
        root = sets.find(int(index))
        labels[index] = numbers.setdefault(root, len(numbers) + 1)
    return labels.reshape(shape), len(numbers)


def minima_persistence(values: np.ndarray) -> list[dict[str, float]]:
    """0-dimensional persistence pairs of the sub-level filtration, most persistent first:
    ``birth`` (a local minimum's value), ``death`` (the value where it merges into an older
    component; inf for the global minimum) and the grid index of the minimum."""
    values = np.asarray(values, dtype=float)
    flat, shape = values.ravel(), values.shape
    order = [int(i) for i in np.argsort(flat, kind="stable") if np.isfinite(flat[i])]
    sets, added = _UnionFind(flat.size), np.zeros(flat.size, dtype=bool)
    birth_point = np.arange(flat.size)  # per root: the point where its component was born
    pairs = []
    for index in order:
        added[index] = True
        for n in _neighbours(index, shape):
            if not added[n]:
                continue
            a, b = sets.find(index), sets.find(n)
            if a == b:
                continue
            elder, younger = sorted((a, b), key=lambda r: (flat[birth_point[r]], birth_point[r]))
            if birth_point[younger] != index:  # a point merging with itself is no feature
                pairs.append((birth_point[younger], float(flat[index])))
            sets.parent[younger] = elder
    roots = {sets.find(i) for i in order}
    pairs += [(birth_point[r], math.inf) for r in roots]
    out = [{"birth": float(flat[b]), "death": d, "persistence": d - float(flat[b]),
            "index": [int(k) for k in np.unravel_index(b, shape)]} for b, d in pairs]
    return sorted(out, key=lambda p: -p["persistence"])


def _centre_index(surface: Surface) -> tuple[int, ...]:
    i = int(np.argmin(np.abs(surface.x)))
    return (i,) if surface.y is None else (int(np.argmin(np.abs(surface.y))), i)


def sublevel_summary(surface: Surface, level: float, metric: str = "test_loss", relative: bool = False,
                     persistence_pairs: int = 10) -> dict[str, object]:
    """Components, area fraction and the centre's component (its area fraction and widths along
    alpha and beta) of ``{metric <= level}``; ``relative`` adds the centre value to ``level``."""
    if metric not in surface.values:
        raise ConfigError("metric", metric, "one of " + ", ".join(surface.metric_names), str(surface.path))
    values = np.asarray(surface.values[metric], dtype=float)
    centre = _centre_index(surface)
    if relative and not np.isfinite(values[centre]):
        raise RunFileError(f"'{surface.path}': {metric} at the centre point is not computed (NaN); "
                           "a relative level needs it (resume the surface job)")
    absolute = float(level) + (float(values[centre]) if relative else 0.0)
    labels, count = sublevel_labels(values, absolute)
    mine = labels[centre]
    member = labels == mine if mine else np.zeros_like(labels, dtype=bool)
    return {
        "metric": metric, "level": absolute, "level_given": float(level), "relative": relative,
        "components": count, "area_fraction": float((labels > 0).mean()),
        "centre_component_area": float(member.mean()),
        "centre_width_alpha": _width(surface.x, member.any(axis=0) if member.ndim == 2 else member),
        "centre_width_beta": _width(surface.y, member.any(axis=1)) if member.ndim == 2 else None,
        "persistence": minima_persistence(values)[:persistence_pairs],
    }


def _width(axis: np.ndarray | None, covered: np.ndarray) -> float:
    if axis is None or not covered.any():
        return 0.0
    chosen = np.asarray(axis)[covered]
    return float(chosen.max() - chosen.min())
