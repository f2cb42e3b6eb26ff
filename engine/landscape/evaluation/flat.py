"""The model's moved tensors as views of one flat buffer, so a grid point costs two fused ops.

Every tensor a direction covers (parameters, and batch-norm statistics for ``states``) is
re-seated as a view into one 1-D buffer, keeping its shape and memory format (channels-last
included). theta and the directions are stored in the same layout, so

    flat = theta + alpha * x_k        (one kernel)
    flat += beta * y                  (one kernel)

moves the whole model to a grid point without touching any other memory and without
rebuilding a single tensor. Several points stack as rows of a ``(P, total)`` matrix for
evaluation with ``torch.func.vmap``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor


def _strides(t: Tensor) -> tuple[int, ...]:
    """Strides of ``t`` if it is dense (contiguous or channels-last), else C-contiguous ones."""
    dense = t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))
    return tuple(t.stride()) if dense else tuple(torch.empty(t.shape, device="meta").stride())


class FlatPoints:
    """Binds ``live`` tensors (in ``keys`` order) to one buffer; holds theta and directions alike."""

    def __init__(
        self,
        live: Sequence[Tensor],
        keys: Sequence[str],
        origin: Mapping[str, Tensor],
        xs: Sequence[Mapping[str, Tensor]],
        y: Mapping[str, Tensor] | None,
    ) -> None:
        device = live[0].device if live else torch.device("cpu")
        self.keys = list(keys)
        self.layout: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []  # (offset, shape, strides)
        offset = 0
        for t in live:
            self.layout.append((offset, tuple(t.shape), _strides(t)))
            offset += t.numel()
        self.total = offset
        self.flat = torch.empty(offset, dtype=torch.float32, device=device)
        with torch.no_grad():
            for t, view in zip(live, self.views(self.flat)):
                view.copy_(t)
                t.data = view  # the module keeps its Parameter objects; their storage is now shared
        self.origin = self.pack(origin)
        self.xs = [self.pack(x) for x in xs]
        self.y = self.pack(y) if y is not None else None

    def views(self, buffer: Tensor) -> list[Tensor]:
        """Each tensor's view into a flat ``buffer`` laid out like this one."""
        return [torch.as_strided(buffer, shape, strides, off) for off, shape, strides in self.layout]

    def batched_views(self, rows: Tensor) -> dict[str, Tensor]:
        """Each tensor's view into a ``(P, total)`` matrix: name -> (P, *shape)."""
        row_stride = rows.stride(0)
        return {
            key: torch.as_strided(rows, (rows.shape[0], *shape), (row_stride, *strides), off)
            for key, (off, shape, strides) in zip(self.keys, self.layout)
        }

    def pack(self, vector: Mapping[str, Tensor]) -> Tensor:
        out = torch.empty_like(self.flat)
        with torch.no_grad():
            for key, view in zip(self.keys, self.views(out)):
                view.copy_(vector[key])
        return out

    def write(self, out: Tensor, alpha: float, beta: float, direction: int) -> None:
        """``out := theta + alpha * x[direction] + beta * y`` (``out`` is flat or one row)."""
        if alpha != 0.0:
            torch.add(self.origin, self.xs[direction], alpha=alpha, out=out)
        else:
            out.copy_(self.origin)
        if beta != 0.0 and self.y is not None:
            out.add_(self.y, alpha=beta)

    def set_point(self, alpha: float, beta: float = 0.0, direction: int = 0) -> None:
        """Move the bound model to theta + alpha * x[direction] + beta * y, in place."""
        with torch.no_grad():
            self.write(self.flat, alpha, beta, direction)

    def stacked(self, points: Sequence[tuple[float, float, int]], rows: Tensor | None = None) -> Tensor:
        """A ``(P, total)`` matrix, row p holding the tensors at ``points[p]`` (computed as in set_point)."""
        if rows is None or rows.shape[0] != len(points):
            rows = torch.empty((len(points), self.total), dtype=torch.float32, device=self.flat.device)
        with torch.no_grad():
            for row, (alpha, beta, direction) in zip(rows, points):
                self.write(row, alpha, beta, direction)
        return rows
