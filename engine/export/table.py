"""Surfaces as CSV tables a spreadsheet or pandas reads directly.

1D: one row per α, columns ``x``, every metric, then ``<metric>_std`` for averaged curves.
2D: long format, one row per grid point with ``y`` outer and ``x`` inner (the same order
as the VTK points): columns ``x``, ``y``, every metric, then any ``<metric>_std``.
Values are written with Python's shortest exact float text; not computed = ``nan``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from engine.export.surface_like import SurfaceLike, checked_array


def write_csv(surface: SurfaceLike, out: Path) -> None:
    """Every stored metric of ``surface`` as rows of ``out``."""
    names = [name for name in (surface.metric_names or list(surface.values)) if name in surface.values]
    columns = {name: checked_array(surface, name, surface.values[name]) for name in names}
    for name, std in (surface.std or {}).items():
        columns[f"{name}_std"] = checked_array(surface, f"{name}_std", std)
    if surface.is_2d:
        alpha, beta = np.meshgrid(surface.x, surface.y)
        coordinates = {"x": alpha, "y": beta}
    else:
        coordinates = {"x": np.asarray(surface.x)}
    table = {**coordinates, **columns}
    flat = [np.asarray(column, dtype=np.float64).ravel() for column in table.values()]
    with open(out, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(table)
        writer.writerows(zip(*(map(repr, map(float, column)) for column in flat)))
