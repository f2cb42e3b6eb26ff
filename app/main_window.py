"""The LossLab main window: three panels around the views, toolbar, menus and status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QWidget,
)

from app.actions import build_actions, build_menus, build_toolbar
from app.file_actions import FileActions
from app.panels.analysis_panel import AnalysisPanel
from app.panels.connect_dialog import add_connect_action
from app.panels.experiment_panel import ExperimentPanel
from app.panels.study_panel import install_study_action
from app.panels.surface_panel import SurfacePanel
from app.panels.training_panel import TrainingPanel
from app.qt_cleanup import release_plot_menus
from app.resources import app_icon
from app.settings import AppSettings
from app.view_area import ViewArea
from app.worker import Job, JobError, JobRunner, JobState, preload_engine_libraries
from app.workspace import WorkspaceController
from engine.errors import LossLabError
from engine.events import ProgressEvent
from engine.version import __version__

DEFAULT_SIZE = (1400, 900)
PANEL_WIDTH = 470


def device_description() -> str:
    """What the engine computes on: the CUDA GPU's name, or the CPU."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores)"


def scrolling(panel: QWidget) -> QScrollArea:
    """``panel`` in a vertical scroll area, so a tall panel never forces the window's height."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(panel)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumWidth(panel.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width() + 4)
    return area


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None, restore_layout: bool = True) -> None:
        preload_engine_libraries()  # before the 3D view creates its GL context
        super().__init__()
        self.setWindowTitle("LossLab")
        self.setWindowIcon(app_icon())
        self.setObjectName("losslab_main_window")
        self.settings = settings or AppSettings()
        self.worker = JobRunner(self)
        self.views = ViewArea(self)
        self.setCentralWidget(self.views)
        self.experiment = ExperimentPanel()
        self.training = TrainingPanel(self.worker, self.settings, self.experiment.config)
        self.surface = SurfacePanel(self.worker, self.settings)
        self.analysis = AnalysisPanel(self.worker, self.views)
        self.files = FileActions(self)
        self.workspace = WorkspaceController(self)
        self.docks: dict[str, QDockWidget] = {}
        for key, title, widget in (("experiment", "Experiment", self.experiment),
                                   ("training", "Training", self.training),
                                   ("surface", "Surface", self.surface),
                                   ("analysis", "Analysis", scrolling(self.analysis))):
            self._add_dock(key, title, widget, Qt.DockWidgetArea.LeftDockWidgetArea)
        controls = QScrollArea()
        controls.setWidgetResizable(True)
        controls.setWidget(self.views.controls)
        controls.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scrollbar = controls.verticalScrollBar().sizeHint().width()
        controls.setMinimumWidth(self.views.controls.minimumSizeHint().width() + scrollbar + 4)
        self._add_dock("workspace", "Workspace", self.workspace.dock, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("display", "Display", controls, Qt.DockWidgetArea.RightDockWidgetArea)
        self.actions = build_actions(self)
        self.recent_menu = build_menus(self, self.actions)
        self.workspace.install_menu()
        self.actions["connect"] = add_connect_action(self, self.worker, self.views.show_surface_file)
        self.actions["open_study"] = install_study_action(self, self.worker)
        self.toolbar = build_toolbar(self, self.actions)
        self._build_status_bar()
        self._connect()
        self.setAcceptDrops(True)
        self._default_state = self.saveState()
        self.default_layout()
        if restore_layout:
            self.settings.restore_window(self)
        self.refresh_recent_menu()

    def _add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock

    def default_layout(self) -> None:
        """Panels as tabs on the left, display controls on the right, Experiment in front."""
        self.resize(*DEFAULT_SIZE)
        left = [self.docks[k] for k in ("experiment", "training", "surface", "analysis")]
        for dock in self.docks.values():
            dock.setVisible(True)
            dock.setFloating(False)
        for dock in left[1:]:
            self.tabifyDockWidget(left[0], dock)
        self.resizeDocks(left, [PANEL_WIDTH] * len(left), Qt.Orientation.Horizontal)
        display = self.docks["display"]
        self.resizeDocks([display], [display.widget().minimumWidth()], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["workspace"], display], [280, 520], Qt.Orientation.Vertical)
        self.show_panel("experiment")

    def toggle_panels(self) -> None:
        """Hide every dock (views use the whole window), or bring them back."""
        show = not any(dock.isVisible() for dock in self.docks.values())
        for dock in self.docks.values():
            dock.setVisible(show)

    def show_panel(self, key: str) -> None:
        self.docks[key].show()
        self.docks[key].raise_()

    def _build_status_bar(self) -> None:
        self.device_label = QLabel(device_description())
        self.device_label.setObjectName("device_label")
        self.job_label = QLabel("Idle")
        self.job_label.setObjectName("job_label")
        self.job_progress = QProgressBar()
        self.job_progress.setMaximumWidth(180)
        self.job_progress.setVisible(False)
        bar = self.statusBar()
        bar.addPermanentWidget(self.job_label)
        bar.addPermanentWidget(self.job_progress)
        bar.addPermanentWidget(self.device_label)

    def _connect(self) -> None:
        ex, tr, su, w = self.experiment, self.training, self.surface, self.worker
        ex.validity_changed.connect(tr.set_can_start)
        ex.validity_changed.connect(lambda ok: self.actions["start"].setEnabled(ok))
        ex.file_loaded.connect(self.remember_file)
        tr.set_can_start(ex.is_valid)
        tr.state_changed.connect(self._training_state)
        tr.run_ready.connect(su.add_run)
        tr.checkpoint_chosen.connect(self._checkpoint_chosen)
        su.surface_started.connect(self.views.begin_live_surface)
        su.points_arrived.connect(self.views.update_live_surface)
        su.surface_ready.connect(lambda path: self.views.show_surface_file(path))
        tr.run_ready.connect(self.analysis.set_run)
        su.surface_ready.connect(self.analysis.set_surface)
        su.state_changed.connect(self._surface_state)
        w.job_started.connect(self._job_started)
        w.idle.connect(lambda: self.job_progress.setVisible(False))
        self._training_state(tr.state)
        self._surface_state(su.state)

    # -- jobs ---------------------------------------------------------------------------
    def _job_started(self, job: Job) -> None:
        """The status bar follows the job that runs now, through its own handle's signals."""
        self.job_label.setText(f"{job.title}…")
        self.job_progress.setValue(0)
        self.job_progress.setVisible(True)
        job.progress.connect(lambda event, job=job: self._job_progress(job, event))
        job.state_changed.connect(lambda state, job=job: self._job_state(job, state))
        job.failed.connect(lambda error, job=job: self.show_error(f"{job.title} failed", error))

    def _job_progress(self, job: Job, event: ProgressEvent) -> None:
        if job.state is not JobState.RUNNING:
            return  # pausing: the label says so until the job has stopped
        share = int(100 * job.overall(event))  # the same number as the panel's bar
        self.job_progress.setValue(share)
        eta = event.eta_seconds
        self.job_label.setText(f"{job.title}: {share} %" + (f", {int(eta)} s left" if eta is not None else ""))

    def _job_state(self, job: Job, state: JobState) -> None:
        words = {JobState.PAUSING: "pausing…", JobState.PAUSED: "paused; Resume continues it",
                 JobState.CANCELLED: "cancelled; files so far are kept", JobState.FAILED: "failed",
                 JobState.FINISHED: "finished"}
        if state in words:
            self.job_label.setText(f"{job.title}: {words[state]}")  # the next job overwrites it when it starts
        if state.is_final:
            self.job_progress.setVisible(False)
            if job.output is not None and Path(job.output).exists():
                self.remember_file(job.output)

    def show_error(self, title: str, error: JobError) -> QMessageBox:
        """A non-blocking error dialog with the message and the field or file concerned."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, error.message, parent=self)
        if error.where:
            box.setInformativeText(f"Concerns: {error.where}")
        if error.details:
            box.setDetailedText(error.details)
        box.setObjectName("error_dialog")
        box.open()
        self.last_error = box
        return box

    def _training_state(self, state: JobState) -> None:
        running = state in (JobState.RUNNING, JobState.PAUSING)
        self.actions["pause"].setEnabled(state is JobState.RUNNING)
        self.actions["stop"].setEnabled(running or state is JobState.PAUSED)
        self.actions["resume"].setEnabled(state is JobState.PAUSED)
        self.actions["start"].setEnabled(self.training.can_start and not running)
        if running:
            self.show_panel("training")

    def _surface_state(self, state: JobState) -> None:
        running = state in (JobState.RUNNING, JobState.PAUSING)
        self.actions["surface"].setEnabled(not running)
        self.actions["cancel_surface"].setEnabled(running)
        if state is JobState.RUNNING:
            self.show_panel("surface")

    def _checkpoint_chosen(self, path: str, epoch: int) -> None:
        self.surface.choose(path, epoch)
        self.show_panel("surface")

    # -- files --------------------------------------------------------------------------
    def open_file(self, path: str | Path, interactive: bool = True) -> str | None:
        """Open a run, surface or experiment file; returns its kind (None after an error)."""
        try:
            kind = self.files.open(path)
        except LossLabError as exc:
            if not interactive:
                raise
            self.show_error("Cannot open file", JobError(str(exc), str(path)))
            return None
        self.remember_file(path)
        return kind

    def remember_file(self, path: str | Path) -> None:
        self.settings.add_recent_file(path)
        self.settings.set_last_folder(path)
        self.refresh_recent_menu()

    def refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for number, path in enumerate(files, start=1):
            action = self.recent_menu.addAction(f"&{number % 10} {Path(path).name}")
            action.setToolTip(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_file(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(files))

    def _clear_recent(self) -> None:
        self.settings.clear_recent_files()
        self.refresh_recent_menu()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_file(url.toLocalFile())
        event.acceptProposedAction()

    def save_window_picture(self, path: str | Path) -> Path:
        """A PNG of the whole window, 3D view included (used by ``losslab gui --screenshot``)."""
        return self.files.save_window_picture(path)

    def show_about(self) -> None:
        QMessageBox.about(self, "About LossLab",
                          f"<b>LossLab {__version__}</b><br>Train models, compute and view neural-network "
                          "loss landscapes.<br>Engine device: " + device_description())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.settings.save_window(self)
        self.worker.shutdown()
        self.views.close()
        super().closeEvent(event)
        release_plot_menus(self)
