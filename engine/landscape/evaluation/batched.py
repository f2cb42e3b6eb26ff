"""Several grid points in one forward pass: ``torch.func.functional_call`` under ``vmap``.

For small models on small evaluation sets a forward pass is mostly per-call overhead; stacking
P parameter sets turns P small matrix products into one batched product. Each point's
parameters are built exactly as :meth:`FlatPoints.set_point` builds them, so the only
difference to the per-point path is the summation order inside the batched products
(~1e-7 relative). The evaluator measures whether this pays before using it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from engine.landscape.evaluation.flat import FlatPoints
from engine.landscape.evaluation.speed import autocast

MAX_ROWS = 65536  # samples x points per forward pass: bounds the activations of one call
Point = tuple[float, float, int]


class BatchedPoints:
    """Evaluates up to ``size`` points per forward pass of ``model`` over ``data``."""

    def __init__(
        self,
        model: nn.Module,
        points: FlatPoints,
        data: Mapping[str, tuple[Tensor, Tensor]],
        loss_fn: Callable[..., Tensor],
        classification: bool,
        size: int,
        batch_size: int,
        autocast_dtype: torch.dtype | None = None,
        *,
        tf32: bool = False,
    ) -> None:
        self.points, self.data, self.loss_fn = points, data, loss_fn
        self.classification, self.size = classification, size
        self.batch_size = max(1, min(batch_size, MAX_ROWS // size))
        self.device = points.flat.device
        self._autocast, self._tf32 = autocast_dtype, tf32
        self._rows: Tensor | None = None

        def forward(params: dict[str, Tensor], inputs: Tensor) -> Tensor:
            return functional_call(model, params, (inputs,))

        self._forward = vmap(forward, in_dims=(0, None))

    def evaluate(self, chunk: Sequence[Point]) -> list[dict[str, float]]:
        """Metrics of each point of ``chunk`` (at most ``size`` points), as the per-point path gives them."""
        self._rows = self.points.stacked(chunk, self._rows)
        params = self.points.batched_views(self._rows)
        count = len(chunk)
        results: list[dict[str, float]] = [{} for _ in chunk]
        with torch.inference_mode(), autocast(self.device, self._autocast, self._tf32), warnings.catch_warnings():
            # pooling over channels-last images has no batching rule: correct, a little slower, said each call
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")
            for split, (inputs, labels) in self.data.items():
                loss_sum, correct = self._split_sums(params, inputs, labels, count)
                for p, result in enumerate(results):
                    result[f"{split}_loss"] = loss_sum[p] / len(inputs)
                    if self.classification:
                        result[f"{split}_acc"] = 100.0 * correct[p] / len(inputs)
        return results

    def _split_sums(
        self, params: dict[str, Tensor], inputs: Tensor, labels: Tensor, count: int
    ) -> tuple[list[float], list[int]]:
        loss_sum = torch.zeros(count, dtype=torch.float64, device=self.device)
        correct = torch.zeros(count, dtype=torch.int64, device=self.device)
        for start in range(0, len(inputs), self.batch_size):
            batch_labels = labels[start : start + self.batch_size]
            outputs = self._forward(params, inputs[start : start + self.batch_size]).float()  # (P, B, ...)
            flat_outputs = outputs.reshape(count * outputs.shape[1], *outputs.shape[2:])
            repeated = batch_labels.repeat(count, *([1] * (batch_labels.dim() - 1)))
            per_sample = self.loss_fn(flat_outputs, repeated, reduction="none")
            loss_sum += per_sample.view(count, -1).sum(dim=1).double()
            if self.classification:
                correct += (outputs.argmax(dim=-1) == batch_labels).sum(dim=1)
        return loss_sum.tolist(), correct.tolist()
