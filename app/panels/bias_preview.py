"""Live per-class counts before/after the bias, computed off the GUI thread.

Loading a data set can take seconds (CIFAR-10 from a folder), so the check runs in a
one-thread pool; only the newest request's answer is shown. The same check tells the
form whether the data source can be read at all (e.g. an empty CIFAR-10 folder).
"""

from __future__ import annotations

import itertools
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.bias import preview_bias
from engine.config import ExperimentConfig


class _Relay(QObject):
    # Lives on the GUI thread; emitting from the pool thread queues the call there.
    answered = Signal(int, object, object)  # request number, result dict or None, exception or None


class DataCheck(QObject):
    """Runs ``engine.bias.preview_bias`` in the background; emits the newest result only."""

    started = Signal()
    finished = Signal(object)  # preview dict
    failed = Signal(object)  # the LossLabError (or other exception) raised by the engine

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._relay = _Relay(self)
        self._relay.answered.connect(self._answered)
        self._numbers = itertools.count(1)
        self._latest = 0
        self.pending = False

    def request(self, cfg: ExperimentConfig) -> None:
        number = self._latest = next(self._numbers)
        self.pending = True
        self.started.emit()

        def job() -> None:
            try:
                self._relay.answered.emit(number, preview_bias(cfg), None)
            except Exception as exc:  # noqa: BLE001 - any failure is shown next to the data fields
                self._relay.answered.emit(number, None, exc)

        self._pool.start(job)

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)

    def _answered(self, number: int, result: dict | None, error: BaseException | None) -> None:
        if number != self._latest:
            return  # an older request; a newer one is on its way
        self.pending = False
        if error is None:
            self.finished.emit(result)
        else:
            self.failed.emit(error)


class BiasPreview(QWidget):
    """A small table: class name, training samples before, after, and the change."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("Per-class training samples appear here.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("bias_preview_table")
        self.table.setHorizontalHeaderLabels(["Class", "Before", "After", "Change"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(220)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)

    def show_checking(self) -> None:
        self.summary.setText("Reading the data set…")

    def show_error(self, message: str) -> None:
        self.summary.setText(f"Cannot preview: {message}")
        self.table.setRowCount(0)

    def show_preview(self, preview: dict[str, Any]) -> None:
        classes, before, after = preview["classes"], preview["counts_before"], preview["counts_after"]
        self.summary.setText(f"{preview['summary']} — {sum(before)} → {sum(after)} training samples")
        self.table.setRowCount(len(before))
        for row, (name, b, a) in enumerate(zip(classes, before, after, strict=True)):
            cells = [name, str(b), str(a), f"{a - b:+d}" if a != b else ""]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if a != b:
                    item.setForeground(QBrush(QColor("#c62828")))
                self.table.setItem(row, col, item)
