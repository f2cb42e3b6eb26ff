"""A surface that fills in while its job runs, from the engine's progress payloads (Qt-free).

``engine.landscape.compute_surface`` reports each batch of evaluated points as
``{"indices": [...], "shape": ..., "values": {metric: [...]}}``. They are recorded into an
engine :class:`~engine.storage.surface_file.Surface` (the one surface type; its
:meth:`~engine.storage.surface_file.Surface.record` also keeps an averaged curve's mean and
std). Points not reported yet stay NaN, which the views draw as holes, never as zeros. A
resumed job starts from the points its file already holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.landscape.options import SurfaceOptions
from engine.storage.surface_file import Surface


class LiveSurface:
    """The partial surface of a running job: its options and the :class:`Surface` so far."""

    def __init__(self, path: str | Path, options: SurfaceOptions, existing: Surface | None = None) -> None:
        self.options = options
        attrs = {"directions": options.directions, "live": True}
        self.surface = Surface.empty(path, options.x_coordinates, options.y_coordinates, attrs)
        if existing is not None:  # a resumed job: what the file holds is already computed
            self.surface.values = {k: np.array(v, dtype=float) for k, v in existing.values.items()}
            self.surface.std = {k: np.array(v, dtype=float) for k, v in existing.std.items()}
            self.surface.samples = {k: np.array(v, dtype=float) for k, v in existing.samples.items()}
            self.surface.trajectory = existing.trajectory

    @property
    def averaged(self) -> bool:
        return self.options.average_count > 1

    @property
    def has_points(self) -> bool:
        return bool(self.surface.values) and bool(self.surface.computed.any())

    @property
    def done_fraction(self) -> float:
        """Share of the grid computed so far (a resumed job's progress starts here)."""
        return float(self.surface.computed.mean()) if self.surface.values else 0.0

    def add(self, payload: dict[str, Any]) -> dict[str, np.ndarray]:
        """Record one batch of points; returns the updated metric arrays (grid-shaped)."""
        indices = [tuple(i) for i in payload.get("indices", [])]
        self.surface.record(indices, payload.get("values", {}), self.options.average_count)
        return self.surface.values
