"""A surface that fills in while its job runs, from the engine's progress payloads (Qt-free).

``engine.landscape.compute_surface`` reports each batch of evaluated points as
``{"indices": [...], "shape": ..., "values": {metric: [...]}}``. Points not reported yet stay
NaN, which the views draw as holes, never as zeros.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.landscape.options import SurfaceOptions
from engine.storage.surface_file import Surface


class LiveSurface:
    """The partial surface of a running job, shaped like ``engine.storage.surface_file.Surface``."""

    def __init__(self, path: str | Path, options: SurfaceOptions) -> None:
        self.options = options
        x, y = options.x_coordinates, options.y_coordinates
        self.grid = (len(x),) if y is None else (len(y), len(x))
        self.surface = Surface(Path(path), x, y, {}, {"directions": options.directions, "live": True})
        self._samples: dict[str, np.ndarray] = {}  # averaged 1D curves: (N, nx) per metric

    @property
    def averaged(self) -> bool:
        return self.options.average_count > 1

    @property
    def has_points(self) -> bool:
        return bool(self.surface.values)

    def add(self, payload: dict[str, Any]) -> dict[str, np.ndarray]:
        """Record one batch of points; returns the updated metric arrays (grid-shaped)."""
        indices = [tuple(i) for i in payload.get("indices", [])]
        if not indices:
            return self.surface.values
        target = self._samples if self.averaged else self.surface.values
        shape = tuple(payload.get("shape") or (self.grid if not self.averaged else (0,)))
        for metric, values in payload.get("values", {}).items():
            array = target.setdefault(metric, np.full(shape, np.nan))
            rows = tuple(np.array(axis) for axis in zip(*indices, strict=True))
            array[rows] = np.asarray(values, dtype=float)
        if self.averaged:
            self._update_means()
        return self.surface.values

    def _update_means(self) -> None:
        # A coordinate's mean is shown once every direction there has been evaluated.
        for metric, samples in self._samples.items():
            done = np.isfinite(samples).all(axis=0)
            with np.errstate(invalid="ignore"):
                self.surface.values[metric] = np.where(done, samples.mean(axis=0), np.nan)
                self.surface.std[metric] = np.where(done, samples.std(axis=0), np.nan)
