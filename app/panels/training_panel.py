"""Training panel: start / pause / stop / resume a run, with live curves, progress and reports.

Pause and Stop both stop the engine at its next safe point (the run file stays valid); the
panel shows ``pausing`` at once and ``paused`` when the engine has stopped. Resume submits
a new job on the same run file (``resume=True``) that continues from its last checkpoint;
its progress bar continues from where that checkpoint is, it does not restart at 0 %.
The panel's :attr:`TrainingPanel.state` is a :class:`~app.worker.JobState`.
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
from app.worker import Job, JobError, JobRunner, JobState
from engine.config import ExperimentConfig
from engine.errors import LossLabError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch
from engine.storage.run import load_run

IDLE, RUNNING, PAUSING, PAUSED = JobState.IDLE, JobState.RUNNING, JobState.PAUSING, JobState.PAUSED
STOPPED, FINISHED, FAILED = JobState.CANCELLED, JobState.FINISHED, JobState.FAILED


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


def percent(fraction: float) -> int:
    return int(100 * min(max(fraction, 0.0), 1.0))


class TrainingPanel(QWidget):
    state_changed = Signal(object)  # JobState
    run_ready = Signal(str)  # a run file that holds checkpoints (after a job ends, or opened)
    checkpoint_chosen = Signal(str, int)  # run path, epoch

    def __init__(self, worker: JobRunner, settings: AppSettings,
                 config_source: Callable[[], ExperimentConfig], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker, self.settings, self.config_source = worker, settings, config_source
        self.state, self.can_start = IDLE, False
        self.job: Job | None = None
        self.run_path: Path | None = None
        self.cfg: ExperimentConfig | None = None
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
        if not self.can_start or self.state in (RUNNING, PAUSING):
            return
        self.cfg = self.config_source()
        folder = Path(self.folder.value() or self.settings.runs_folder()).expanduser()
        self.run_path = unused_path(folder, self.cfg.name)
        self.curves.clear()
        self.report.clear()
        self._submit(resume=False, base=0.0)

    def resume(self) -> None:
        if self.state is not PAUSED or self.run_path is None:
            return
        run = load_run(self.run_path)
        self.cfg = run.config
        self.curves.set_history(run.metrics)
        self.report.show_run(run)
        self._submit(resume=True, base=run.final_epoch / max(run.config.train.epochs, 1))

    def pause(self) -> None:
        if self.job is not None:
            self.job.pause()

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()
        elif self.state is PAUSED:
            self._set_state(STOPPED)
            self.eta.setText("stopped; the run file keeps every checkpoint so far")

    def _submit(self, resume: bool, base: float) -> None:
        from engine.training import train

        cfg, out = self.cfg, self.run_path

        def run(sink: EventSink, token: CancelToken) -> Path:
            return train(cfg, out, resume=resume, on_event=sink, cancel=token)

        verb = "Resuming" if resume else "Training"
        job = self.job = Job("train", f"{verb} {cfg.name}", run, out)
        job.base = base
        job.started.connect(self._started)
        job.progress.connect(self._progress)
        job.state_changed.connect(self._job_state)
        job.failed.connect(self._failed)
        self.progress.setValue(percent(base))
        self.eta.setText("waiting for the job before it to end…" if self.worker.busy else "")
        self.run_label.setText(f"{verb} {cfg.name} → {out}")
        self.worker.submit(job)
        self._set_state(RUNNING)

    # -- the job's signals ------------------------------------------------------------------
    def _started(self) -> None:
        self._clock = Stopwatch()
        self.eta.setText("Preparing data and model…")

    def _progress(self, event: ProgressEvent) -> None:
        self.progress.setValue(percent(self.job.overall(event)))
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
        if self.state is RUNNING:
            elapsed, remaining = format_clock(event.elapsed), format_clock(event.eta_seconds)
            self.eta.setText(f"elapsed {elapsed} · remaining {remaining}")

    def _job_state(self, state: JobState) -> None:
        if state is PAUSING:
            self.eta.setText("pausing at the next batch…")
        elif state.is_final:
            self._ended(state)
            return
        self._set_state(state)

    def _failed(self, error: JobError) -> None:
        self.run_label.setText(f"Training failed: {error.message}")

    def _ended(self, state: JobState) -> None:
        self.job = None
        at = self.progress.value()
        texts = {FINISHED: f"done in {format_clock(self._clock())}",
                 PAUSED: f"paused at {at} %; Resume continues from the last checkpoint",
                 STOPPED: f"stopped at {at} %; the run file keeps every checkpoint so far",
                 FAILED: "failed; the last good checkpoint is kept"}
        if state is FINISHED:
            self.progress.setValue(100)
        self.eta.setText(texts.get(state, ""))
        self._set_state(state)
        if self.run_path is not None and self.run_path.exists():
            try:
                self.show_run(self.run_path, keep_state=True)
            except LossLabError:
                pass  # stopped before the first checkpoint: nothing to show yet

    def show_run(self, path: str | Path, keep_state: bool = False) -> None:
        """Show a run file's curves, final metrics, per-class report and checkpoints.

        Refused while a job trains (its curves and state would be overwritten under it)."""
        if self.job is not None and not keep_state:
            raise LossLabError(f"'{path}': cannot show another run while '{self.job.title}' is running; "
                               "pause or stop it first")
        run = load_run(path)
        self.run_path, self.cfg = Path(path), run.config
        self.curves.set_history(run.metrics)
        self.report.show_run(run)
        scalars = {k: float(v[-1]) for k, v in run.metrics.items() if v.ndim == 1 and len(v)}
        self.summary.setText(headline(scalars, run.final_epoch, run.config.train.epochs))
        self.run_label.setText(f"Run {run.config.name}: {path} ({run.status})")
        if not keep_state:  # an opened file: nothing of an earlier job's progress stays on screen
            epochs = max(run.config.train.epochs, 1)
            resumable = run.final_epoch < epochs
            self.progress.setValue(percent(run.final_epoch / epochs))
            self.eta.setText(f"epoch {run.final_epoch} of {epochs}" + ("; Resume continues it" if resumable else ""))
            self._set_state(PAUSED if resumable else FINISHED)
        self.run_ready.emit(str(path))

    def _checkpoint_chosen(self, epoch: int) -> None:
        if self.run_path is not None:
            self.checkpoint_chosen.emit(str(self.run_path), epoch)

    def _set_state(self, state: JobState) -> None:
        self.state = state
        running = state in (RUNNING, PAUSING)
        self.buttons["start"].setEnabled(self.can_start and not running)
        self.buttons["pause"].setEnabled(state is RUNNING)
        self.buttons["stop"].setEnabled(running or state is PAUSED)
        self.buttons["resume"].setEnabled(state is PAUSED)
        self.state_changed.emit(state)
