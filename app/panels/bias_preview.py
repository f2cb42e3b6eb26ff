"""Live per-class counts before/after the bias, computed off the GUI thread.

Loading a data set can take seconds (CIFAR-10 from a folder), so the check runs as a job on
a runner of its own (the app's one threading mechanism, ``app.worker``), never behind a
training job; only the newest request's answer is shown. The same check tells the form
whether the data source can be read at all (e.g. an empty CIFAR-10 folder).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.worker import Job, JobError, JobRunner
from engine.bias import preview_bias
from engine.config import ExperimentConfig


class DataCheck(QObject):
    """Runs ``engine.bias.preview_bias`` in the background; emits the newest result only."""

    started = Signal()
    finished = Signal(object)  # preview dict
    failed = Signal(object)  # the LossLabError (or other exception) raised by the engine

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # torch_threads=0: the main runner sets the process-wide torch thread count.
        self._runner = JobRunner(self, torch_threads=0)
        self._latest: Job | None = None
        self.pending = False

    def request(self, cfg: ExperimentConfig) -> None:
        if self._latest is not None:
            self._latest.cancel()  # a queued older request then never runs
        job = self._latest = Job("preview", "Reading the data set", lambda _sink, _token: preview_bias(cfg))
        job.finished.connect(lambda result, job=job: self._answered(job, result, None))
        job.failed.connect(lambda error, job=job: self._answered(job, None, error))
        self.pending = True
        self.started.emit()
        self._runner.submit(job)

    def wait(self, msecs: int = 30000) -> bool:
        return self._runner.wait_done(msecs)

    def shutdown(self) -> bool:
        return self._runner.shutdown()

    def _answered(self, job: Job, result: dict | None, error: JobError | None) -> None:
        if job is not self._latest:
            return  # an older request; a newer one is on its way
        self.pending = False
        if error is None:
            self.finished.emit(result)
        else:
            self.failed.emit(error.exception or RuntimeError(error.message))


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
