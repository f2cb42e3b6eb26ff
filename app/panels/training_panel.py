"""Training panel: start / pause / stop / resume a run, with live curves, progress and reports.

Pause and Stop both cancel the engine at its next safe point (the run file stays valid);
after Pause, Resume continues the same run file from its last checkpoint (``resume=True``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.panels.field_editors import PathEditor
from app.panels.run_report import RunReport, headline
from app.panels.training_curves import TrainingCurves
from app.resources import icon
from app.settings import AppSettings
from app.worker import EngineWorker, Job, JobError
from engine.config import ExperimentConfig
from engine.errors import LossLabError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch
from engine.storage.run import load_run

IDLE, RUNNING, PAUSED, STOPPED = "idle", "running", "paused", "stopped"
FINISHED, FAILED = "finished", "failed"


def format_clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


def unused_path(folder: Path, stem: str, suffix: str = ".h5") -> Path:
    """``folder/stem.h5``, or ``stem-2.h5``, ``stem-3.h5``… if taken: never overwrite a run.
    Characters that are not safe in a file name (e.g. "/" in an experiment name) become "-"."""
    stem = re.sub(r"[^\w.-]+", "-", stem).strip(".-") or "run"
    path, n = folder / f"{stem}{suffix}", 2
    while path.exists():
        path, n = folder / f"{stem}-{n}{suffix}", n + 1
    return path


class TrainingPanel(QWidget):
    state_changed = Signal(str)
    run_ready = Signal(str)  # a run file that holds checkpoints (after a job ends, or opened)
    checkpoint_chosen = Signal(str, int)  # run path, epoch

    def __init__(self, worker: EngineWorker, settings: AppSettings,
                 config_source: Callable[[], ExperimentConfig], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker, self.settings, self.config_source = worker, settings, config_source
        self.state, self.can_start = IDLE, False
        self.job: Job | None = None
        self.run_path: Path | None = None
        self.cfg: ExperimentConfig | None = None
        self._stop_as = PAUSED  # what a cancelled job means: Pause (resumable) or Stop
        self._clock = Stopwatch()
        self.buttons = {name: QPushButton(icon(name), name.capitalize()) for name in
                        ("start", "pause", "stop", "resume")}
        for name, button in self.buttons.items():
            button.setObjectName(f"train_{name}")
            button.clicked.connect(getattr(self, name))
        self.folder = PathEditor("runs_folder", "Folder for run files")
        self.folder.set_value(settings.runs_folder())
        self.folder.edited.connect(lambda: settings.set_runs_folder(self.folder.value()))
        self.run_label = QLabel("No run yet: choose an experiment and press Start.")
        self.run_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("%p %")
        self.eta = QLabel("")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.curves = TrainingCurves()
        self.report = RunReport()
        self.report.checkpoint_chosen.connect(self._checkpoint_chosen)
        self._build_layout()
        worker.progress.connect(self._progress)
        worker.job_started.connect(lambda job: self._if_mine(job, self._started))
        worker.job_finished.connect(lambda job, _r: self._if_mine(job, lambda: self._ended(FINISHED)))
        worker.job_cancelled.connect(lambda job: self._if_mine(job, self._cancelled))
        worker.job_failed.connect(lambda job, err: self._if_mine(job, lambda: self._failed(err)))
        self._set_state(IDLE)

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        for button in self.buttons.values():
            buttons.addWidget(button)
        grid = QGridLayout()
        grid.addWidget(QLabel("Save runs in"), 0, 0)
        grid.addWidget(self.folder, 0, 1)
        grid.addWidget(self.progress, 1, 0, 1, 2)
        grid.addWidget(self.eta, 2, 0, 1, 2)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.report)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(grid)
        layout.addWidget(self.run_label)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)

    # -- actions --------------------------------------------------------------------------
    def set_can_start(self, ok: bool) -> None:
        self.can_start = ok
        self._set_state(self.state)

    def start(self) -> None:
        if not self.can_start or self.state == RUNNING:
            return
        self.cfg = self.config_source()
        folder = Path(self.folder.value() or self.settings.runs_folder()).expanduser()
        self.run_path = unused_path(folder, self.cfg.name)
        self.curves.clear()
        self.report.clear()
        self._submit(resume=False)

    def resume(self) -> None:
        if self.state != PAUSED or self.run_path is None:
            return
        run = load_run(self.run_path)
        self.cfg = run.config
        self.curves.set_history(run.metrics)
        self.report.show_run(run)
        self._submit(resume=True)

    def pause(self) -> None:
        if self.job is not None:
            self._stop_as = PAUSED
            self.worker.cancel(self.job)

    def stop(self) -> None:
        if self.job is not None:
            self._stop_as = STOPPED
            self.worker.cancel(self.job)
        elif self.state == PAUSED:
            self._set_state(STOPPED)

    def _submit(self, resume: bool) -> None:
        from engine.training import train

        cfg, out = self.cfg, self.run_path

        def run(sink: EventSink, token: CancelToken) -> Path:
            return train(cfg, out, resume=resume, on_event=sink, cancel=token)

        verb = "Resuming" if resume else "Training"
        self._stop_as = PAUSED
        self.job = self.worker.submit(Job("train", f"{verb} {cfg.name}", run, out))
        self.run_label.setText(f"{verb} {cfg.name} → {out}")
        self._set_state(RUNNING)

    # -- worker signals -------------------------------------------------------------------
    def _if_mine(self, job: Job, handler: Callable[[], None]) -> None:
        if self.job is not None and job.id == self.job.id:
            handler()

    def _started(self) -> None:
        self._clock = Stopwatch()
        self.eta.setText("Preparing data and model…")

    def _progress(self, job: Job, event: ProgressEvent) -> None:
        if self.job is None or job.id != self.job.id:
            return
        self.progress.setValue(int(100 * event.fraction))
        epoch = event.payload.get("epoch")
        if epoch is not None:
            metrics = event.payload.get("metrics", {})
            self.curves.append_epoch(epoch, metrics)
            self.summary.setText(headline(metrics, epoch, self.cfg.train.epochs))
            per_class = event.payload.get("per_class") or {}
            if per_class:
                rows = {name: np.asarray([values]) for name, values in per_class.items()}
                self.report.show_per_class(event.payload.get("classes", []), rows)
            every = self.cfg.train.checkpoint_every
            if epoch % every == 0 or epoch == self.cfg.train.epochs:
                self.report.add_checkpoint(epoch)
        elapsed, remaining = format_clock(event.elapsed), format_clock(event.eta_seconds)
        self.eta.setText(f"elapsed {elapsed} · remaining {remaining}")

    def _cancelled(self) -> None:
        self._ended(self._stop_as)

    def _failed(self, error: JobError) -> None:
        self._ended(FAILED)
        self.run_label.setText(f"Training failed: {error.message}")

    def _ended(self, state: str) -> None:
        self.job = None
        if state == FINISHED:
            self.progress.setValue(100)
            self.eta.setText(f"done in {format_clock(self._clock())}")
        self._set_state(state)
        if self.run_path is not None and self.run_path.exists():
            try:
                self.show_run(self.run_path, keep_state=True)
            except LossLabError:
                pass  # stopped before the first checkpoint: nothing to show yet

    def show_run(self, path: str | Path, keep_state: bool = False) -> None:
        """Show a run file's curves, final metrics, per-class report and checkpoints."""
        run = load_run(path)
        self.run_path, self.cfg = Path(path), run.config
        self.curves.set_history(run.metrics)
        self.report.show_run(run)
        scalars = {k: float(v[-1]) for k, v in run.metrics.items() if v.ndim == 1 and len(v)}
        self.summary.setText(headline(scalars, run.final_epoch, run.config.train.epochs))
        self.run_label.setText(f"Run {run.config.name}: {path} ({run.status})")
        if not keep_state:
            resumable = run.final_epoch < run.config.train.epochs
            self._set_state(PAUSED if resumable else FINISHED)
        self.run_ready.emit(str(path))

    def _checkpoint_chosen(self, epoch: int) -> None:
        if self.run_path is not None:
            self.checkpoint_chosen.emit(str(self.run_path), epoch)

    def _set_state(self, state: str) -> None:
        self.state = state
        running = state == RUNNING
        self.buttons["start"].setEnabled(self.can_start and not running)
        self.buttons["pause"].setEnabled(running)
        self.buttons["stop"].setEnabled(running or state == PAUSED)
        self.buttons["resume"].setEnabled(state == PAUSED)
        self.state_changed.emit(state)
