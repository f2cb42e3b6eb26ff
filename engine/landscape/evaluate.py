"""Loss and accuracy of the model at theta + alpha * x + beta * y, fast and exact.

The evaluation tensors are prepared once and held on the device (no DataLoader); the
model is built once and its parameters are overwritten in place for each point from a
stored copy of theta with ``torch._foreach`` ops. Losses are summed per batch in float64
and divided by the number of samples; accuracy is in percent, as in loss-landscape.

Batch norm runs in eval mode (running statistics) by default, as in loss-landscape's
``eval_loss``. ``bn_train_mode=True`` uses each batch's own statistics instead (then the
values depend on the batch size) and never updates the stored running statistics.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from engine.landscape.directions import Directions
from engine.training.experiment import select_device
from engine.training.losses import correct_count, loss_function

Data = Mapping[str, tuple[Tensor, Tensor]]


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


def metric_names(splits: tuple[str, ...] | list[str], classification: bool) -> list[str]:
    """``train_loss, train_acc, test_loss, test_acc`` (no accuracy for regression)."""
    return [f"{s}_{m}" for s in splits for m in (("loss", "acc") if classification else ("loss",))]


class PointEvaluator:
    """Evaluates one model at points of the plane spanned by ``directions``."""

    def __init__(
        self,
        model: nn.Module,
        directions: Directions,
        data: Data,
        loss: str,
        device: torch.device,
        batch_size: int = 256,
        bn_train_mode: bool = False,
    ) -> None:
        _tune_allocator()
        self.device, self.batch_size = device, batch_size
        self.loss_fn = loss_function(loss)
        self.data = {s: (x.to(device), y.to(device)) for s, (x, y) in data.items()}
        self.classification = all(not y.dtype.is_floating_point for _, y in self.data.values())
        self.metric_names = metric_names(list(self.data), self.classification)
        self.model = _prepare_model(model, device, bn_train_mode)
        if any(x.dim() == 4 for x, _ in self.data.values()):
            self._try_channels_last()
        named = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        self._keys = list(directions.origin)
        self._live = [named[k] for k in self._keys]
        self._origin = self._on_device(directions.origin)
        self._xs = [self._on_device(x) for x in directions.xs]
        self._y = self._on_device(directions.y) if directions.y is not None else None

    def _on_device(self, vector: Mapping[str, Tensor]) -> list[Tensor]:
        # empty_like keeps each live tensor's memory format, so the foreach ops stay elementwise
        return [torch.empty_like(live).copy_(vector[k]) for live, k in zip(self._live, self._keys)]

    def _try_channels_last(self) -> None:
        """Channels-last convolutions are ~1.8x faster on CPU; keep them only if the model accepts them."""
        self.model.to(memory_format=torch.channels_last)
        probe = next(iter(self.data.values()))[0][:2]
        try:
            with torch.inference_mode():
                self.model(probe.contiguous(memory_format=torch.channels_last))
        except RuntimeError:
            self.model.to(memory_format=torch.contiguous_format)
            return
        self.data = {
            s: (x.contiguous(memory_format=torch.channels_last), y) for s, (x, y) in self.data.items()
        }

    def set_point(self, alpha: float, beta: float = 0.0, direction: int = 0) -> None:
        """Model parameters := theta + alpha * x[direction] + beta * y, in place."""
        with torch.no_grad():
            torch._foreach_copy_(self._live, self._origin)
            if alpha != 0.0:
                torch._foreach_add_(self._live, self._xs[direction], alpha=alpha)
            if beta != 0.0 and self._y is not None:
                torch._foreach_add_(self._live, self._y, alpha=beta)

    def evaluate(self, alpha: float, beta: float = 0.0, direction: int = 0) -> dict[str, float]:
        """Mean loss and accuracy (percent) per split at one point; NaN/inf losses are returned as such."""
        self.set_point(alpha, beta, direction)
        return self.evaluate_current()

    def evaluate_current(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        with torch.inference_mode():
            for split, (inputs, labels) in self.data.items():
                loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
                correct = torch.zeros((), dtype=torch.int64, device=self.device)
                for start in range(0, len(inputs), self.batch_size):
                    outputs = self.model(inputs[start : start + self.batch_size])
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


_ALLOCATOR_TUNED = False


def _tune_allocator() -> None:
    """glibc maps and unmaps activation buffers every batch; larger thresholds cut eager
    forward time by ~40 % (see ENVIRONMENT.md, speed notes). Harmless elsewhere."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or not sys.platform.startswith("linux"):
        return
    _ALLOCATOR_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 1 << 30)
        libc.mallopt(m_top_pad, 256 << 20)
    except (OSError, AttributeError):
        pass
