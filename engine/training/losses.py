"""Loss functions by name, as trained and as evaluated on landscapes.

``mse`` follows loss-landscape: mean squared error between softmax(outputs) and one-hot
labels. ``mae`` is for regression targets (the TAAF experiments of the visualisation thesis).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]


def _cross_entropy(outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    return F.cross_entropy(outputs, labels, reduction=reduction)


def _softmax_mse(outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    one_hot = F.one_hot(labels, outputs.shape[1]).to(outputs.dtype)
    per_sample = (F.softmax(outputs, dim=1) - one_hot).pow(2).mean(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum() if reduction == "sum" else per_sample


def _mae(outputs: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    per_sample = (outputs - targets.reshape(outputs.shape).to(outputs.dtype)).abs().flatten(1).mean(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum() if reduction == "sum" else per_sample


LOSSES: dict[str, Callable[..., Tensor]] = {"ce": _cross_entropy, "mse": _softmax_mse, "mae": _mae}


def loss_function(name: str) -> Callable[..., Tensor]:
    """``fn(outputs, targets, reduction="mean"|"sum"|"none")`` for a loss name."""
    return LOSSES[name]


def correct_count(outputs: Tensor, targets: Tensor) -> Tensor:
    """Number of correct top-1 predictions (0 for regression targets)."""
    if targets.dtype.is_floating_point:
        return torch.zeros((), device=outputs.device)
    return (outputs.argmax(dim=1) == targets).sum()
