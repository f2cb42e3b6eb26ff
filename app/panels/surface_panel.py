"""Surface panel: pick a run and checkpoint, directions and grid, then compute in the background.

The options form is built from ``engine.landscape.options.SurfaceOptions`` (its field
metadata gives choices, minimums and help); a rejected option is shown in red next to
its field and Compute stays disabled. New points reach the views while the job runs.

Compute on the options of a cancelled (partial) surface of the same run resumes that file:
only its missing points are computed, and the progress bar starts at what it holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
from app.panels.connect_form import CurveFileEditor
from app.panels.field_editors import FieldParseError
from app.panels.surface_editors import AxisEditor, CheckpointEditor, RunReferenceEditor
from app.panels.training_panel import format_clock, unused_path
from app.resources import icon
from app.settings import AppSettings
from app.worker import Job, JobRunner, JobState
from engine.errors import ConfigError, LossLabError
from engine.events import CancelToken, EventSink, ProgressEvent
from engine.landscape.options import SurfaceOptions
from engine.storage.surface_file import Surface, load_surface, read_surface_attrs

DEFAULTS = {"x": "-1:1:21", "y": "-1:1:21"}  # a first look that finishes in minutes on a CPU


def resumable_surface(path: Path, run_path: Path, options: SurfaceOptions) -> Surface | None:
    """The partial surface at ``path`` if a job with these options on this run can resume it."""
    try:
        attrs = read_surface_attrs(path)
        if attrs is None or Path(str(attrs.get("run_file", ""))).resolve() != run_path.resolve():
            return None
        if any(key in attrs and not _same(attrs[key], value) for key, value in options.identity().items()):
            return None
        surface = load_surface(path)
    except (LossLabError, OSError):
        return None
    return None if surface.is_complete else surface


def _same(stored: object, wanted: object) -> bool:
    try:
        return bool(np.all(np.asarray(stored) == np.asarray(wanted)))
    except (TypeError, ValueError):
        return stored == wanted


class SurfacePanel(QWidget):
    state_changed = Signal(object)  # JobState
    surface_started = Signal(object)  # LiveSurface (empty) of the new job
    points_arrived = Signal(object)  # LiveSurface after a batch of new points
    surface_ready = Signal(str)  # the complete (or cancelled, partial) surface file

    def __init__(self, worker: JobRunner, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker, self.settings = worker, settings
        self.state = JobState.IDLE
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
                  "to": RunReferenceEditor("to"), "via": RunReferenceEditor("via"),
                  "via_curve": CurveFileEditor()}
        self.form = SectionForm("Surface", SurfaceOptions, "", custom)
        self.form.set_values(SurfaceOptions.defaults() | DEFAULTS)
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
            self.form.apply_rules(values)  # each field's "applies when" rule, from SurfaceOptions
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
        running = self.state.is_active and self.state is not JobState.IDLE
        self.compute.setEnabled(not running and self.options is not None and bool(self.runs.currentData()))
        self.cancel_button.setEnabled(running)

    def output_path(self, run_path: Path, options: SurfaceOptions) -> Path:
        """A partial surface of these options to resume, else a new file name (never overwrites)."""
        stem = f"{run_path.stem}-surface-{options.directions}-{self._epoch_part(options)}-{self._grid_part(options)}"
        folder, n = run_path.parent, 1
        while (path := folder / (f"{stem}.h5" if n == 1 else f"{stem}-{n}.h5")).exists():
            if resumable_surface(path, run_path, options) is not None:
                return path
            n += 1
        return unused_path(folder, stem)

    @staticmethod
    def _grid_part(options: SurfaceOptions) -> str:
        return f"{len(options.x_coordinates)}" + (f"x{len(options.y_coordinates)}" if options.is_2d else "")

    @staticmethod
    def _epoch_part(options: SurfaceOptions) -> str:
        return str(options.checkpoint) if options.checkpoint != "final" else "final"

    def start(self) -> Job | None:
        if not self.revalidate() or self.state in (JobState.RUNNING, JobState.PAUSING) \
                or not self.runs.currentData():
            return None
        from engine.landscape.surface import compute_surface

        options, run_path = self.options, Path(self.runs.currentData())
        out = self.output_path(run_path, options)
        existing = resumable_surface(out, run_path, options) if out.exists() else None

        def run(sink: EventSink, token: CancelToken) -> Path:
            return compute_surface(str(run_path), options, out, on_event=sink, cancel=token)

        self.live = LiveSurface(out, options, existing)
        job = self.job = Job("surface", f"Surface of {run_path.stem}", run, out)
        job.base = self.live.done_fraction
        job.progress.connect(self._progress)
        job.state_changed.connect(self._job_state)
        verb = f"Resuming ({int(100 * job.base)} % already computed)" if existing is not None else "Computing"
        self.status.setText(f"{verb} → {out}")
        self.status.setStyleSheet("")
        self.progress.setValue(int(100 * job.base))
        self.eta.setText("")
        self.worker.submit(job)
        self._set_state(JobState.RUNNING)
        self.surface_started.emit(self.live)
        if self.live.has_points:
            self.points_arrived.emit(self.live)
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _progress(self, event: ProgressEvent) -> None:
        self.progress.setValue(int(100 * self.job.overall(event)))
        self.eta.setText(f"{event.done} of {event.total} points · elapsed {format_clock(event.elapsed)}"
                         f" · remaining {format_clock(event.eta_seconds)}")
        if "indices" in event.payload and self.live is not None:
            self.live.add(event.payload)
            self.points_arrived.emit(self.live)

    def _job_state(self, state: JobState) -> None:
        job = self.job
        if not state.is_final or job is None:
            self._set_state(state)
            return
        self.job = None
        if state is JobState.FINISHED:
            self.progress.setValue(100)
        elif self.live is not None:  # what the file holds now, whatever the last event said
            self.progress.setValue(int(100 * self.live.done_fraction))
        done = int(self.live.surface.computed.sum()) if self.live is not None else 0
        total = int(np.prod(self.live.surface.shape)) if self.live is not None else 0
        texts = {JobState.FINISHED: "done", JobState.FAILED: "failed",
                 JobState.CANCELLED: f"cancelled with {done} of {total} points computed; Compute with the same "
                                     "options resumes it"}
        self.eta.setText(texts.get(state, ""))
        self._set_state(state)
        if state is JobState.FAILED:
            self.status.setText("The surface job failed (see the message).")
        elif job.output is not None and Path(job.output).exists():
            self.status.setText(f"Surface {state}: {job.output}")
            self.surface_ready.emit(str(job.output))

    def _set_state(self, state: JobState) -> None:
        self.state = state
        self._update_buttons()
        self.state_changed.emit(state)
