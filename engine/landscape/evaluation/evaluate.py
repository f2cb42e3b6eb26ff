"""Loss and accuracy of the model at theta + alpha * x + beta * y, fast and exact.

The evaluation tensors are prepared once and held on the device (no DataLoader). The model is
built once; the tensors the directions move are views of one flat buffer, set to each point
with two fused ops (:mod:`engine.landscape.evaluation.flat`). Batch norm is folded into the preceding
conv/linear layer and refreshed per point (:mod:`engine.landscape.evaluation.bn_fold`), conv nets run
channels-last, small models may evaluate several points per forward pass
(:mod:`engine.landscape.evaluation.batched`), and ``precision``/``compile`` select autocast and
torch.compile (:mod:`engine.landscape.evaluation.speed`). :attr:`PointEvaluator.record` says which of
these were used; the surface file stores it. Losses are summed per batch in float64 and
divided by the number of samples; accuracy is in percent, as in loss-landscape.

Batch norm runs in eval mode (running statistics) by default, as in loss-landscape's
``eval_loss``. ``bn_train_mode=True`` uses each batch's own statistics instead (then the
values depend on the batch size, nothing is folded) and never updates the running statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from engine.device import select_device
from engine.landscape.directions.build import Directions
from engine.landscape.evaluation.batched import BatchedPoints, Point
from engine.landscape.evaluation.bn_fold import FoldedModel, fold_batch_norm, has_batch_norm, is_plain_mlp
from engine.landscape.evaluation.flat import FlatPoints
from engine.landscape.evaluation.input_layer import InputLayerTables, precompute_input_layer
from engine.landscape.evaluation.speed import (
    BN_TRAIN_BATCH,
    SpeedRecord,
    activation_bytes_per_sample,
    autocast,
    autocast_dtype,
    choose_batch_size,
    choose_points_per_forward,
    evaluation_loss,
    free_device_memory,
    try_compile,
)
from engine.training.losses import correct_count

Data = Mapping[str, tuple[Tensor, Tensor]]
FOLD_TOLERANCE = 1e-4  # folded vs unfolded logits, relative to their scale, checked once at start


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available; asking for CUDA without it is a ConfigError."""
    return select_device(name)


def select_subset(data: Data, size: int, seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    """A seeded random ``size`` samples of each split (all of them when ``size`` is 0 or larger)."""
    out = {}
    for number, (split, (inputs, labels)) in enumerate(sorted(data.items())):
        if 0 < size < len(inputs):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 7919, number]))
            keep = torch.from_numpy(np.sort(rng.choice(len(inputs), size, replace=False)))
            inputs, labels = inputs[keep], labels[keep]
        out[split] = (inputs, labels)
    return out


def extra_metric_names(extra_metrics: Sequence[Any]) -> list[str]:
    """Names of the per-point metrics beyond loss and accuracy (e.g. Hessian eigenvalues).

    An extra metric is a picklable object with ``names: tuple[str, ...]`` and
    ``__call__(evaluator) -> dict[str, float]``, called with the evaluator's model already at
    the point (outside inference mode, so it may use autograd); worker processes get a copy.
    """
    return [name for extra in extra_metrics for name in extra.names]


def metric_names(splits: tuple[str, ...] | list[str], classification: bool) -> list[str]:
    """``train_loss, train_acc, test_loss, test_acc`` (no accuracy for regression)."""
    return [f"{s}_{m}" for s in splits for m in (("loss", "acc") if classification else ("loss",))]


class PointEvaluator:
    """Evaluates one model at points of the plane spanned by ``directions``.

    ``batch_size=0`` chooses it from the model's activation size and the device's memory;
    ``points_per_forward=0`` evaluates several points per forward pass where measurements
    showed it pays (small MLPs on few samples; 1 = never, P > 1 = always P). ``fold_bn`` and
    ``channels_last`` (None = where it applies) exist to compare against the plain path.
    """

    def __init__(
        self,
        model: nn.Module,
        directions: Directions,
        data: Data,
        loss: str,
        device: torch.device,
        batch_size: int = 0,
        bn_train_mode: bool = False,
        *,
        precision: str = "fp32",
        compile: bool = False,
        fold_bn: bool = True,
        channels_last: bool | None = None,
        points_per_forward: int = 0,
        precompute_input: bool = True,
        extra_metrics: Sequence[Any] = (),
    ) -> None:
        self.device = device
        self.extra_metrics = tuple(extra_metrics)
        self.loss_fn = evaluation_loss(loss)
        self._autocast = autocast_dtype(precision, device)
        self._tf32 = precision == "tf32"
        self.data = {s: (x.to(device), y.to(device)) for s, (x, y) in data.items()}
        self.classification = all(not y.dtype.is_floating_point for _, y in self.data.values())
        self.metric_names = metric_names(list(self.data), self.classification) + extra_metric_names(
            self.extra_metrics
        )
        self.model = _prepare_model(model, device, bn_train_mode)
        self.record = SpeedRecord(
            device=str(device),
            threads=torch.get_num_threads(),
            autocast=precision if self._autocast is not None or self._tf32 else "off",
        )
        if channels_last is not False and any(x.dim() == 4 for x, _ in self.data.values()):
            self.record.channels_last = self._try_channels_last()
        named = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        keys = list(directions.origin)
        live = [named[k] for k in keys]
        self.points = FlatPoints(live, keys, directions.origin, directions.xs, directions.y)
        self.batch_size = batch_size or self._auto_batch_size(bn_train_mode)
        self.record.batch_size = self.batch_size
        self.forward_model: nn.Module = self.model
        self._folded: FoldedModel | None = None
        self._tables: InputLayerTables | None = None
        if fold_bn and not bn_train_mode:
            self._fold()
        if compile:
            self.forward_model, self.record.compile_error = try_compile(
                self.forward_model, device, self._warm_up
            )
            self.record.compiled = not self.record.compile_error
        self.batched: BatchedPoints | None = None
        self._per_point_splits = list(self.data)
        self._choose_points_per_forward(points_per_forward, bn_train_mode)
        if precompute_input and not self.record.compiled:
            self._precompute_input()

    # ---- set-up ---------------------------------------------------------------------------
    def _try_channels_last(self) -> bool:
        """Channels-last convolutions run ~1.2-1.8x faster on CPU; kept only if the model accepts them."""
        self.model.to(memory_format=torch.channels_last)
        probe = next(iter(self.data.values()))[0][:2]
        try:
            with torch.inference_mode():
                self.model(probe.contiguous(memory_format=torch.channels_last))
        except RuntimeError:
            self.model.to(memory_format=torch.contiguous_format)
            return False
        self.data = {
            s: (x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x, y)
            for s, (x, y) in self.data.items()
        }
        return True

    def _auto_batch_size(self, bn_train_mode: bool) -> int:
        if bn_train_mode:
            return BN_TRAIN_BATCH
        inputs = [x for x, _ in self.data.values()]
        per_sample = activation_bytes_per_sample(self.model, inputs[0][:2])
        images = any(x.dim() >= 4 for x in inputs)
        samples = max(len(x) for x in inputs)
        free = free_device_memory(self.device)
        return choose_batch_size(self.device.type, samples, per_sample, images, free)

    def _fold(self) -> None:
        """Fold batch norm where the folded model gives the same outputs at theta (checked once)."""
        folded = fold_batch_norm(self.model) if has_batch_norm(self.model) else None
        if folded is None:
            return
        self.set_point(0.0)
        probe = next(iter(self.data.values()))[0][:4]
        with torch.inference_mode():
            expected = self.model(probe).float()
            try:
                got = folded(probe).float()
            except RuntimeError:
                return
        scale = 1.0 + float(expected.abs().max())
        if got.shape == expected.shape and float((got - expected).abs().max()) <= FOLD_TOLERANCE * scale:
            self._folded, self.forward_model = folded, folded
            self.record.bn_folded, self.record.folded_layers = True, folded.count

    def _warm_up(self, model: nn.Module) -> None:
        inputs = next(iter(self.data.values()))[0]
        with torch.inference_mode(), autocast(self.device, self._autocast, self._tf32):
            model(inputs[: self.batch_size])

    def _choose_points_per_forward(self, requested: int, bn_train_mode: bool) -> None:
        """A rule per split, not a timing: a split always takes the same path on the same machine,
        whatever other splits are evaluated with it, so results are bit-identical across runs."""
        possible = not bn_train_mode and not self.record.compiled
        eligible = possible and is_plain_mlp(self.model)
        parameters = sum(p.numel() for p in self.model.parameters())
        free, per_point = free_device_memory(self.device), 0
        if free is not None and possible:  # CUDA: a parameter set and a batch of activations per point
            probe = next(iter(self.data.values()))[0][:2]
            per_point = 4 * parameters + self.batch_size * activation_bytes_per_sample(self.model, probe)
        sizes = {
            split: requested
            or choose_points_per_forward(self.device.type, len(x), parameters, eligible,
                                         any_model=possible, free_bytes=free, bytes_per_point=per_point)
            for split, (x, _) in self.data.items()
        }
        batched = {split: self.data[split] for split, size in sizes.items() if size > 1}
        if not batched:
            return
        size = max(sizes.values())
        self.batched = BatchedPoints(
            self.model,
            self.points,
            batched,
            self.loss_fn,
            self.classification,
            size,
            self.batch_size,
            self._autocast,
            tf32=self._tf32,
        )
        self.batched.evaluate([(0.0, 0.0, 0)] * size)  # fails here, not mid-grid, if vmap cannot run it
        self._per_point_splits = [split for split in self.data if split not in batched]
        self.record.points_per_forward = size

    def _precompute_input(self) -> None:
        made = precompute_input_layer(
            self.forward_model, self.points, self.data, list(self.data), self.batch_size
        )
        if made is not None:
            self.forward_model, self._tables = made
            self.record.input_layer_precomputed = True

    # ---- evaluation -----------------------------------------------------------------------
    @property
    def points_per_forward(self) -> int:
        return self.record.points_per_forward

    def set_point(self, alpha: float, beta: float = 0.0, direction: int = 0) -> None:
        """Model parameters := theta + alpha * x[direction] + beta * y, in place."""
        self.points.set_point(alpha, beta, direction)
        if self._folded is not None:
            self._folded.refresh()
        if self._tables is not None:
            self._tables.point = (alpha, beta, direction)

    def evaluate(self, alpha: float, beta: float = 0.0, direction: int = 0) -> dict[str, float]:
        """Mean loss and accuracy (percent) per split at one point; NaN/inf losses are returned as such."""
        self.set_point(alpha, beta, direction)
        return self.evaluate_current()

    def evaluate_many(self, points: Sequence[Point]) -> list[dict[str, float]]:
        """Metrics at each ``(alpha, beta, direction)``, several per forward pass where that was chosen."""
        results = self._loss_metrics(points)
        if self.extra_metrics:
            for point, result in zip(points, results):
                self.set_point(*point)
                for extra in self.extra_metrics:
                    result.update(extra(self))
        return results

    def _loss_metrics(self, points: Sequence[Point]) -> list[dict[str, float]]:
        if self.batched is None:
            return [self.evaluate(*point) for point in points]
        size, results = self.batched.size, []
        for first in range(0, len(points), size):
            chunk = points[first : first + size]
            results += self.batched.evaluate(chunk)
        if self._per_point_splits:
            for point, result in zip(points, results):
                self.set_point(*point)
                result.update(self.evaluate_current(self._per_point_splits))
        names = metric_names(list(self.data), self.classification)
        return [{m: r[m] for m in names} for r in results]  # the usual metric order

    def evaluate_current(self, splits: Sequence[str] | None = None) -> dict[str, float]:
        """Metrics at the current parameters, of ``splits`` (default: all)."""
        metrics: dict[str, float] = {}
        with torch.inference_mode(), autocast(self.device, self._autocast, self._tf32):
            for split in self.data if splits is None else splits:
                inputs, labels = self.data[split]
                loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
                correct = torch.zeros((), dtype=torch.int64, device=self.device)
                for start in range(0, len(inputs), self.batch_size):
                    if self._tables is not None:
                        self._tables.rows = (split, start, min(start + self.batch_size, len(inputs)))
                    outputs = self.forward_model(inputs[start : start + self.batch_size]).float()
                    batch_labels = labels[start : start + self.batch_size]
                    loss_sum += self.loss_fn(outputs, batch_labels, reduction="sum").double()
                    correct += correct_count(outputs, batch_labels).to(torch.int64)
                metrics[f"{split}_loss"] = loss_sum.item() / len(inputs)
                if self.classification:
                    metrics[f"{split}_acc"] = 100.0 * correct.item() / len(inputs)
        return metrics


def _prepare_model(model: nn.Module, device: torch.device, bn_train_mode: bool) -> nn.Module:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if bn_train_mode:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                # batch statistics, and the stored running statistics are never touched
                m.train()
                m.track_running_stats = False
    return model
