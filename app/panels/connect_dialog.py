"""Run > Connect two runs: train a curve of low loss between two runs (Garipov et al. 2018), watch
curve vs straight line fill in, then show the plane through both runs and the curve's bend.

The work runs as jobs of the main window's runner (status bar, cancel); a cancelled or killed job
leaves a resumable curve file, and pressing Connect again with the same settings continues it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.panels.connect_form import ConnectOptionsForm
from app.views.curve_1d import Curve1DView
from app.worker import Job, JobError, JobRunner
from engine.connect import CurveRecord, connect, load_curve
from engine.events import ProgressEvent
from engine.storage.surface_file import Surface

RUN_FILTER = "LossLab run (*.h5 *.hdf5);;All files (*)"
PLANE_GRID = {"x": "-0.25:1.25:31", "y": "-0.3:1.3:33"}  # A, B, the bend (0, 1) and the curve with a margin


def curve_surfaces(t: np.ndarray, values: dict[str, dict[str, np.ndarray]], path: Path) -> dict[str, Surface]:
    """The curve and the straight line as two 1D surfaces over t (what the 1D view draws)."""
    names = {"curve": "trained curve", "line": "straight line"}
    return {names[p]: Surface(path, np.asarray(t, dtype=float), None, {m: np.asarray(v, dtype=float)
                                                                       for m, v in metrics.items()})
            for p, metrics in values.items()}


def summary_text(record: CurveRecord) -> str:
    s = record.summary
    lines = [f"Barrier (max over t − mean of the ends), train loss: curve {s['barrier_curve_train_loss']:.4f}, "
             f"straight line {s['barrier_line_train_loss']:.4f}; test loss: curve "
             f"{s['barrier_curve_test_loss']:.4f}, line {s['barrier_line_test_loss']:.4f}."]
    if "a_test_acc" in s:
        text = f"Test accuracy: A {100 * s['a_test_acc']:.1f} %, B {100 * s['b_test_acc']:.1f} %"
        if "ensemble_test_acc" in s:
            text += f", {len(s['ensemble_t'])} models on the curve averaged {100 * s['ensemble_test_acc']:.1f} %"
        lines.append(text + ".")
    lines.append("Batch norm re-estimated at every t." if s.get("bn_updated") else
                 "Batch-norm statistics not re-estimated (off, or the net has none).")
    return "\n".join(lines)


class ConnectDialog(QDialog):
    """Pick two runs and a curve file, train and evaluate the curve, compare it with the line."""

    def __init__(self, runner: JobRunner, show_surface: Callable[[Path], object] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect two runs")
        self.setObjectName("connect_dialog")
        self.runner, self.show_surface = runner, show_surface
        self.job: Job | None = None
        self.record: CurveRecord | None = None
        self.live: dict[str, dict[str, list[float]]] = {}
        self.form = ConnectOptionsForm()
        self.view = Curve1DView()
        self.view.acc_plot.setLabel("bottom", "t (0 = run A, 1 = run B)")
        self._build()

    # ---- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        files = QFormLayout()
        self.run_a, self.run_b, self.out = QLineEdit(), QLineEdit(), QLineEdit()
        for label, edit, save in (("Run A (t = 0)", self.run_a, False), ("Run B (t = 1)", self.run_b, False),
                                  ("Curve file", self.out, True)):
            files.addRow(label, self._file_row(edit, save))
        self.connect_button = QPushButton("Connect")
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open curve file…")
        self.plane_button = QPushButton("Show plane with the curve")
        self.connect_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self._open_dialog)
        self.plane_button.clicked.connect(self.compute_plane)
        self.cancel_button.setEnabled(False)
        self.plane_button.setEnabled(False)
        buttons = QHBoxLayout()
        for button in (self.connect_button, self.cancel_button, self.open_button, self.plane_button):
            buttons.addWidget(button)
        self.progress = QProgressBar()
        self.status = QLabel("Choose two runs of one architecture trained on the same data.")
        self.status.setWordWrap(True)
        self.status.setObjectName("connect_status")
        left = QWidget()
        column = QVBoxLayout(left)
        column.addLayout(files)
        column.addWidget(self.form)
        column.addLayout(buttons)
        column.addWidget(self.progress)
        column.addWidget(self.status)
        column.addStretch(1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.view)
        splitter.setSizes([380, 620])
        QVBoxLayout(self).addWidget(splitter)
        self.resize(1100, 620)

    def _file_row(self, edit: QLineEdit, save: bool) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        browse = QPushButton("…")
        browse.setMaximumWidth(32)
        browse.clicked.connect(lambda: self._browse(edit, save))
        layout.addWidget(browse)
        return row

    def _browse(self, edit: QLineEdit, save: bool) -> None:
        ask = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, _ = ask(self, "Curve file" if save else "Run file", edit.text(), RUN_FILTER)
        if path:
            edit.setText(path)

    # ---- connect --------------------------------------------------------------------------
    def start(self) -> Job | None:
        """Start (or resume) the curve job with the files and options shown."""
        options = self.form.options()
        paths = [edit.text().strip() for edit in (self.run_a, self.run_b, self.out)]
        if options is None or not all(paths):
            if options is not None:
                self.status.setText("Choose run A, run B and the curve file to write.")
            return None
        run_a, run_b, out = paths
        self.live = {}
        self.view.clear()

        def run(on_event, cancel) -> CurveRecord:
            return connect(run_a, run_b, out, options, on_event=on_event, cancel=cancel)

        job = self.job = Job("connect", f"Curve {Path(run_a).stem} → {Path(run_b).stem}", run, Path(out))
        job.progress.connect(self._on_progress)
        job.finished.connect(self.show_record)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(lambda: self._ended("Cancelled; Connect again continues from the last epoch."))
        self._running(True)
        return self.runner.submit(job)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _running(self, running: bool) -> None:
        self.connect_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.form.setEnabled(not running)

    def _ended(self, text: str) -> None:
        self._running(False)
        self.status.setText(text)

    def _on_failed(self, error: JobError) -> None:
        self._ended(error.message + (f" ({error.where})" if error.where else ""))

    def _on_progress(self, event: ProgressEvent) -> None:
        self.progress.setValue(int(100 * event.fraction))
        if event.message:
            self.status.setText(event.message)
        if event.stage == "evaluate" and "path" in event.payload:
            self._add_live_point(event.payload)

    def _add_live_point(self, payload: dict) -> None:
        metrics = self.live.setdefault(payload["path"], {})
        for metric in ("train_loss", "train_acc", "test_loss", "test_acc"):
            metrics.setdefault(metric, []).append(payload[metric])
        path = payload["path"]
        t = self._live_t(path)
        for name, surface in curve_surfaces(t, {path: metrics}, Path(self.out.text())).items():
            self.view.add_surface(surface, name)
        self.status.setText(f"Evaluating the {'trained curve' if payload['path'] == 'curve' else 'straight line'} "
                            f"at t = {payload['t']:.2f}")

    def _live_t(self, path: str) -> np.ndarray:
        """The t of the points of ``path`` evaluated so far (the job's grid, which the form shows)."""
        options = self.form.options()
        t = options.t_values if options is not None else np.linspace(0, 1, 21)
        return t[: len(self.live[path]["train_loss"])]

    # ---- results --------------------------------------------------------------------------
    def show_record(self, record: CurveRecord) -> None:
        """Draw a finished curve file: curve vs line, barrier heights and the ensemble."""
        self._running(False)
        self.progress.setValue(100)
        self.out.setText(str(record.path))
        self.run_a.setText(record.run_a)
        self.run_b.setText(record.run_b)
        for name in ("curve", "bends", "epochs", "lr", "batch_size", "t", "bn_update", "ensemble", "seed"):
            self.form.set_value(name, getattr(record.options, name))
        self.view.clear()
        if record.evaluated:
            for name, surface in curve_surfaces(record.t, record.values, record.path).items():
                self.view.add_surface(surface, name)
            self.status.setText(summary_text(record))
        else:
            self.status.setText(f"{record.path}: {record.epochs_done} of {record.options.epochs} epochs trained; "
                                "Connect continues it.")
        self.plane_button.setEnabled(record.evaluated and self.show_surface is not None)
        self.record = record

    def open_file(self, path: str | Path) -> CurveRecord:
        record = load_curve(path)
        self.show_record(record)
        return record

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open curve file", self.out.text(), RUN_FILTER)
        if path:
            try:
                self.open_file(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, never raised into Qt
                self.status.setText(str(exc))

    # ---- the plane ------------------------------------------------------------------------
    def compute_plane(self) -> Job | None:
        """The surface of the plane through A, B and the bend, with the curve on it (opened when done)."""
        from engine.landscape import SurfaceOptions, compute_surface

        record = self.record
        plane = record.path.with_name(record.path.stem + "-plane.h5")
        options = SurfaceOptions(directions="interpolate", checkpoint=record.epoch_a,
                                 to=f"{record.run_b}:{record.epoch_b}", via_curve=str(record.path),
                                 split="train", **PLANE_GRID)

        def run(on_event, cancel) -> Path:
            return compute_surface(record.run_a, options, plane, on_event=on_event, cancel=cancel)

        job = Job("surface", f"Plane through {record.path.stem}", run, plane)
        job.progress.connect(lambda e: self.progress.setValue(int(100 * e.fraction)))
        job.finished.connect(self._plane_ready)
        job.failed.connect(self._on_failed)
        self.status.setText(f"Computing the plane through A, B and the bend -> {plane}")
        return self.runner.submit(job)

    def _plane_ready(self, path: Path) -> None:
        self.status.setText(f"Plane with the curve: {path} (shown in the main window)")
        if self.show_surface is not None:
            self.show_surface(Path(path))


def show_connect_dialog(window: QMainWindow, runner: JobRunner | None = None,
                        show_surface: Callable[[Path], object] | None = None) -> ConnectDialog:
    """The window's one Connect dialog (made on first use), shown and raised."""
    dialog = getattr(window, "connect_dialog", None)
    if dialog is None:
        dialog = ConnectDialog(runner or window.worker, show_surface or window.views.show_surface_file, window)
        window.connect_dialog = dialog
    dialog.show()
    dialog.raise_()
    return dialog


def add_connect_action(window: QMainWindow, runner: JobRunner, show_surface: Callable[[Path], object]) -> QAction:
    """Run > Connect two runs… (one dialog per window, kept while the window lives)."""
    action = QAction("Co&nnect two runs…", window)
    action.setObjectName("action_connect")
    action.triggered.connect(lambda: show_connect_dialog(window, runner, show_surface))
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == "Run":
            menu_action.menu().addSeparator()
            menu_action.menu().addAction(action)
    return action
