"""Whole-split evaluation and the per-class report (the bias-landscape study, Table 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from engine.training.losses import loss_function


@dataclass
class SplitResult:
    loss: float
    accuracy: float
    probabilities: Tensor | None  # softmax outputs, classification only


@torch.inference_mode()
def evaluate_split(model: nn.Module, inputs: Tensor, targets: Tensor, loss: str,
                   batch_size: int = 1024) -> SplitResult:
    """Mean loss (summed in float64) and accuracy of ``model`` in its current mode."""
    fn = loss_function(loss)
    total, correct = 0.0, 0
    probabilities = []
    classification = not targets.dtype.is_floating_point
    for start in range(0, len(inputs), batch_size):
        outputs = model(inputs[start:start + batch_size])
        batch_targets = targets[start:start + batch_size]
        total += float(fn(outputs, batch_targets, reduction="sum").double())
        if classification:
            correct += int((outputs.argmax(dim=1) == batch_targets).sum())
            probabilities.append(torch.softmax(outputs.float(), dim=1))
    count = max(len(inputs), 1)
    probs = torch.cat(probabilities) if probabilities else None
    return SplitResult(total / count, correct / count if classification else float("nan"), probs)


def per_class_report(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Precision, recall and F1 per class (0 where undefined, as scikit-learn's zero_division=0)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_pos = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros(num_classes), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(num_classes), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1}


def ensemble_accuracy(member_probabilities: list[Tensor], labels: Tensor) -> float:
    """Accuracy of the averaged softmax outputs of several models (snapshot ensemble)."""
    mean = torch.stack(member_probabilities).mean(dim=0)
    return float((mean.argmax(dim=1) == labels).float().mean())


def parameter_norm(model: nn.Module) -> float:
    with torch.no_grad():
        return float(torch.sqrt(sum((p.double() ** 2).sum() for p in model.parameters())))
