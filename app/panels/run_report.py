"""What a run achieved: headline metrics, the per-class report and the stored checkpoints."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.storage.run import Run


def headline(metrics: Mapping[str, float], epoch: int, epochs: int) -> str:
    """One line a user reads first: accuracy, loss and the generalisation error."""
    parts = [f"Epoch {epoch}/{epochs}"]
    if "test_acc" in metrics and np.isfinite(metrics["test_acc"]):
        parts.append(f"test accuracy {100 * metrics['test_acc']:.1f} %")
    if "test_loss" in metrics:
        parts.append(f"test loss {metrics['test_loss']:.4f}")
    if "gen_error" in metrics and np.isfinite(metrics["gen_error"]):
        parts.append(f"generalisation error {metrics['gen_error']:.3f} (train − test accuracy)")
    return " · ".join(parts)


def last_row(metrics: Mapping[str, np.ndarray], name: str) -> np.ndarray | None:
    value = metrics.get(name)
    if value is None or np.ndim(value) != 2 or len(value) == 0:
        return None
    return np.asarray(value[-1], dtype=float)


class RunReport(QWidget):
    """Per-class precision/recall/F1 of the latest epoch, and the list of checkpoints."""

    checkpoint_chosen = Signal(int)  # epoch, on double click

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("per_class_table")
        self.table.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.checkpoints = QListWidget()
        self.checkpoints.setObjectName("checkpoint_list")
        self.checkpoints.setToolTip("Double-click a checkpoint to compute its surface")
        self.checkpoints.itemDoubleClicked.connect(
            lambda item: self.checkpoint_chosen.emit(int(item.data(Qt.ItemDataRole.UserRole))))
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(QLabel("Per-class report (test split, last epoch)"))
        left.addWidget(self.table)
        right.addWidget(QLabel("Checkpoints"))
        right.addWidget(self.checkpoints)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left, 5)
        layout.addLayout(right, 2)

    def clear(self) -> None:
        self.table.setRowCount(0)
        self.checkpoints.clear()

    def add_checkpoint(self, epoch: int) -> None:
        label = "epoch 0 (init)" if epoch == 0 else f"epoch {epoch}"
        item = QListWidgetItem(label)
        item.setData(Qt.ItemDataRole.UserRole, epoch)
        self.checkpoints.addItem(item)

    def show_run(self, run: Run) -> None:
        self.checkpoints.clear()
        for epoch in run.epochs:
            self.add_checkpoint(epoch)
        self.show_per_class(run.classes, run.metrics)

    def show_per_class(self, classes: list[str], metrics: Mapping[str, np.ndarray]) -> None:
        columns = [last_row(metrics, f"test_{k}") for k in ("precision", "recall", "f1")]
        if any(c is None for c in columns):
            self.table.setRowCount(0)
            return
        self.table.setRowCount(len(classes))
        for row, name in enumerate(classes):
            cells = [name] + [f"{c[row]:.3f}" for c in columns]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, col, item)
