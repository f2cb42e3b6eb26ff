"""Surface panel: pick a run and checkpoint, directions and grid, then compute in the background.

The options form is built from ``engine.landscape.options.SurfaceOptions`` (its field
metadata gives choices, minimums and help); a rejected option is shown in red next to
its field and Compute stays disabled. New points reach the views while the job runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.live_surface import LiveSurface
from app.panels.config_form import ERROR_STYLE, SectionForm, rejection
from app.panels.field_editors import FieldParseError
from app.panels.surface_editors import AxisEditor, CheckpointEditor, RunReferenceEditor
from app.panels.training_panel import format_clock, unused_path
from app.resources import icon
from app.settings import AppSettings
from app.worker import EngineWorker, Job
from engine.errors import ConfigError, LossLabError
from engine.events import CancelToken, EventSink, ProgressEvent
from engine.landscape.options import SurfaceOptions

DEFAULTS = {"x": "-1:1:21", "y": "-1:1:21"}  # a first look that finishes in minutes on a CPU
SHOWN_WHEN = {
    "to": lambda o: o["directions"] == "interpolate",
    "via": lambda o: o["directions"] == "interpolate" and o["y"] is not None,
    "norm": lambda o: o["directions"] == "random",
    "ignore": lambda o: o["directions"] == "random",
    "candidates": lambda o: o["directions"] == "random" and o["y"] is not None,
    "orthogonalize": lambda o: o["directions"] == "random" and o["y"] is not None,
    "average": lambda o: o["directions"] == "random" and o["y"] is None,
}


class SurfacePanel(QWidget):
    state_changed = Signal(str)  # "idle" | "running" | "finished" | "cancelled" | "failed"
    surface_started = Signal(object)  # LiveSurface (empty) of the new job
    points_arrived = Signal(object)  # LiveSurface after a batch of new points
    surface_ready = Signal(str)  # the complete (or cancelled, partial) surface file

    def __init__(self, worker: EngineWorker, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker, self.settings = worker, settings
        self.state = "idle"
        self.job: Job | None = None
        self.live: LiveSurface | None = None
        self.options: SurfaceOptions | None = None
        self.runs = QComboBox()
        self.runs.setObjectName("surface_run")
        self.runs.setPlaceholderText("Train or open a run first")
        self.runs.currentIndexChanged.connect(self._run_changed)
        browse = QToolButton()
        browse.setIcon(icon("browse"))
        browse.setToolTip("Choose a run file")
        browse.clicked.connect(self._browse_run)
        self.checkpoint = CheckpointEditor()
        custom = {"checkpoint": self.checkpoint, "x": AxisEditor("x"), "y": AxisEditor("y", optional=True),
                  "to": RunReferenceEditor("to"), "via": RunReferenceEditor("via")}
        self.form = SectionForm("Surface", SurfaceOptions, "", custom)
        defaults = SurfaceOptions()
        values = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
        self.form.set_values(values | DEFAULTS)
        self.form.edited.connect(self.revalidate)
        self.compute = QPushButton(icon("surface"), "Compute surface")
        self.compute.setObjectName("surface_start")
        self.compute.clicked.connect(self.start)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.setObjectName("surface_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.eta = QLabel("")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._build_layout(browse)
        worker.progress.connect(self._progress)
        worker.job_finished.connect(lambda job, _r: self._ended(job, "finished"))
        worker.job_cancelled.connect(lambda job: self._ended(job, "cancelled"))
        worker.job_failed.connect(lambda job, _e: self._ended(job, "failed"))
        self.revalidate()

    def _build_layout(self, browse: QToolButton) -> None:
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Run"))
        run_row.addWidget(self.runs, 1)
        run_row.addWidget(browse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute)
        buttons.addWidget(self.cancel_button)
        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(self.form)
        column.addStretch(1)  # rows keep their height; spare room goes below the form
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        grid = QGridLayout()
        grid.addWidget(self.progress, 0, 0)
        grid.addWidget(self.eta, 1, 0)
        layout = QVBoxLayout(self)
        layout.addLayout(run_row)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        layout.addLayout(grid)
        layout.addWidget(self.status)

    # -- runs ---------------------------------------------------------------------------
    def add_run(self, path: str) -> None:
        """Offer a run file (newest first) and select it."""
        path = str(Path(path).resolve())
        index = self.runs.findData(path)
        if index < 0:
            self.runs.insertItem(0, Path(path).name, path)
            self.runs.setItemData(0, path, Qt.ItemDataRole.ToolTipRole)
            index = 0
        if self.runs.currentIndex() == index:
            self._run_changed(index)
        self.runs.setCurrentIndex(index)

    def choose(self, path: str, epoch: int | str) -> None:
        self.add_run(path)
        self.checkpoint.set_value(epoch)
        self.revalidate()

    def _browse_run(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a run", self.settings.last_folder(),
                                              "Run files (*.h5 *.hdf5)")
        if path:
            self.add_run(path)

    def _run_changed(self, _index: int) -> None:
        from engine.storage.run import load_run

        path = self.runs.currentData()
        if not path:
            return
        try:
            self.checkpoint.set_epochs(load_run(path).epochs)
        except LossLabError as exc:
            self.status.setText(str(exc))
        self.revalidate()

    # -- validation and jobs --------------------------------------------------------------
    def revalidate(self) -> bool:
        for row in self.form.rows.values():
            row.show_error("")
        self.options = None
        try:
            values = self.form.values()
            for name, shown in SHOWN_WHEN.items():
                self.form.set_row_visible(name, shown(values))
            self.options = SurfaceOptions(**values)
        except FieldParseError as exc:
            self._field_error(exc.key, str(exc))
        except ConfigError as exc:
            self._field_error(exc.key, rejection(exc))
        if self.options is not None:
            hint = "" if self.runs.currentData() else "Train or open a run to compute its surface."
            self.status.setText(hint)
            self.status.setStyleSheet("")
        self._update_buttons()
        return self.options is not None

    def _field_error(self, key: str, reason: str) -> None:
        row = self.form.rows.get(key)
        if row is not None:
            row.show_error(reason)
        label = row.label.text() if row is not None else key
        self.status.setText(f"Cannot compute: {label}: {reason}")
        self.status.setStyleSheet(ERROR_STYLE)

    def _update_buttons(self) -> None:
        running = self.state == "running"
        self.compute.setEnabled(not running and self.options is not None and bool(self.runs.currentData()))
        self.cancel_button.setEnabled(running)

    def output_path(self, run_path: Path, options: SurfaceOptions) -> Path:
        grid = f"{len(options.x_coordinates)}" + (f"x{len(options.y_coordinates)}" if options.is_2d else "")
        epoch = options.checkpoint if options.checkpoint != "final" else "final"
        return unused_path(run_path.parent, f"{run_path.stem}-surface-{options.directions}-{epoch}-{grid}")

    def start(self) -> Job | None:
        if not self.revalidate() or self.state == "running" or not self.runs.currentData():
            return None
        from engine.landscape.surface import compute_surface

        options, run_path = self.options, Path(self.runs.currentData())
        out = self.output_path(run_path, options)

        def run(sink: EventSink, token: CancelToken) -> Path:
            return compute_surface(str(run_path), options, out, on_event=sink, cancel=token)

        self.live = LiveSurface(out, options)
        self.job = self.worker.submit(Job("surface", f"Surface of {run_path.stem}", run, out))
        self.status.setText(f"Computing → {out}")
        self.status.setStyleSheet("")
        self.progress.setValue(0)
        self._set_state("running")
        self.surface_started.emit(self.live)
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.worker.cancel(self.job)

    def _progress(self, job: Job, event: ProgressEvent) -> None:
        if self.job is None or job.id != self.job.id:
            return
        self.progress.setValue(int(100 * event.fraction))
        self.eta.setText(f"{event.done} of {event.total} points · elapsed {format_clock(event.elapsed)}"
                         f" · remaining {format_clock(event.eta_seconds)}")
        if "indices" in event.payload and self.live is not None:
            self.live.add(event.payload)
            self.points_arrived.emit(self.live)

    def _ended(self, job: Job, how: str) -> None:
        if self.job is None or job.id != self.job.id:
            return
        self.job = None
        self._set_state(how)
        if how == "failed":
            self.status.setText("The surface job failed (see the message).")
        elif job.output is not None and Path(job.output).exists():
            self.status.setText(f"Surface {how}: {job.output}")
            self.surface_ready.emit(str(job.output))

    def _set_state(self, state: str) -> None:
        self.state = state
        self._update_buttons()
        self.state_changed.emit(state)
