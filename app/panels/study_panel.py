"""The study window: a study folder's variants as a sortable table, their surfaces side by side,
and the study itself as a background job (start or resume, with progress and cancel).

Open it with File > Open study… (a folder written by ``losslab study`` or the app, or a study
.toml file whose results then go to a folder you choose).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QTableView,
    QToolBar,
    QWidget,
)

from app.panels.study_table import StudySortProxy, StudyTableModel
from app.qt_cleanup import release_plot_menus
from app.views.comparison import PanelTitle
from app.views.study_grid import StudyGrid
from app.worker import Job, JobError, JobRunner
from engine.errors import ConfigError, LossLabError
from engine.events import CancelToken, EventSink, ProgressEvent
from engine.study import StudyConfig, load_study, run_study, step_file, summary_columns, summary_rows, write_summary
from engine.study.record import RECORD, read_record


def study_of_folder(folder: Path) -> StudyConfig:
    """The study a folder was made by (its study.json names the study file)."""
    record = read_record(folder)
    if record is None:
        raise ConfigError("<folder>", str(folder), "a study folder (with the study.json that `losslab study` "
                          "writes), or open a study .toml file instead", str(folder))
    return load_study(record["source"])


def run_study_job(study: StudyConfig, folder: Path, on_event: EventSink, cancel: CancelToken) -> Path:
    """The job's work: every missing step, then summary.csv and report.html."""
    run_study(study, folder, on_event=on_event, cancel=cancel)
    write_summary(study, folder)
    on_event(ProgressEvent("report", 0, 1, 0.0, "writing report.html"))
    # Off-screen 3D pictures get their own process: no second GL context next to the app's views.
    source = str(Path(study.source).resolve())
    subprocess.run([sys.executable, "-m", "engine.cli", "study", source, "--out", str(folder), "--report-only"],
                   check=True, capture_output=True)
    return folder / "report.html"


class StudyWindow(QMainWindow):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("study_window")
        self.runner = runner
        self.study: StudyConfig | None = None
        self.folder: Path | None = None
        self.job: Job | None = None
        self.model = StudyTableModel()
        self.proxy = StudySortProxy()
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("study_table")
        self.table.setModel(self.proxy)
        # Unsorted until a header is clicked: the study's own variant order (Qt would sort by the
        # first column, descending).
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.grid = StudyGrid()
        splitter = QSplitter()
        splitter.setOrientation(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.grid)
        splitter.setSizes([300, 560])
        self.setCentralWidget(splitter)
        self._build_toolbar()
        self.status = QLabel("No study open")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.resize(1280, 900)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Study")
        self.addToolBar(bar)
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, slot in (("run", "Run / resume study", self.start),
                                 ("cancel", "Cancel", self.cancel),
                                 ("compare", "Compare selected surfaces", self.compare_selected),
                                 ("refresh", "Refresh table", self.refresh),
                                 ("report", "Open report", self.open_report)):
            action = bar.addAction(text, slot)
            self.actions_by_name[name] = action
        self.actions_by_name["cancel"].setEnabled(False)

    # ---- opening ------------------------------------------------------------------------
    def open_folder(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.open(study_of_folder(folder), folder)

    def open(self, study: StudyConfig, folder: Path) -> None:
        self.study, self.folder = study, Path(folder)
        self.setWindowTitle(f"Study {study.name} — {folder}")
        self.refresh()

    def refresh(self) -> None:
        if self.study is None or self.folder is None:
            return
        rows = summary_rows(self.study, self.folder) if self.folder.is_dir() else []
        if not rows:
            rows = [{"variant": v.name, "status": "not started"} for v in self.study.variants]
        self.model.set_rows(summary_columns(self.study), rows)
        self.table.resizeColumnsToContents()
        done = sum(1 for r in rows if r.get("status") == "complete")
        self.status.setText(f"{self.study.name}: {len(rows)} variants, {done} trained — {self.folder}")

    # ---- the study job ------------------------------------------------------------------
    def start(self) -> None:
        if self.study is None or self.folder is None or (self.job and self.job.state.is_active):
            return
        study, folder = self.study, self.folder
        self.job = self.runner.submit(Job("study", f"study {study.name}",
                                          lambda sink, token: run_study_job(study, folder, sink, token), folder))
        self.job.progress.connect(self._progress)
        for signal in (self.job.finished, self.job.cancelled):
            signal.connect(self._ended)
        self.job.failed.connect(self._failed)
        self.actions_by_name["cancel"].setEnabled(True)
        self.actions_by_name["run"].setEnabled(False)
        self.progress.setVisible(True)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _progress(self, event: ProgressEvent) -> None:
        if event.stage == "study":
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
            if event.message:
                self.status.setText(event.message)
                self.refresh_rows_quietly()
        elif event.total:
            self.status.setText(f"{self._step_text()} — {event.stage} {event.done}/{event.total}")

    def _step_text(self) -> str:
        text = self.status.text()
        return text.split(" — ")[0]

    def refresh_rows_quietly(self) -> None:
        try:
            self.refresh()
        except LossLabError:
            pass  # a file being written right now: the next event refreshes again

    def _ended(self, *_: Any) -> None:
        self.actions_by_name["cancel"].setEnabled(False)
        self.actions_by_name["run"].setEnabled(True)
        self.progress.setVisible(False)
        self.refresh()

    def _failed(self, error: JobError) -> None:
        self._ended()
        QMessageBox.warning(self, "Study failed", f"{error.message}\n{error.where}".strip())

    # ---- comparing ------------------------------------------------------------------------
    def selected_variants(self) -> list[dict[str, Any]]:
        """The selected variants in the order the table shows them (its current sorting)."""
        chosen = sorted(self.table.selectionModel().selectedRows(), key=lambda index: index.row())
        return [self.model.variant(self.proxy.mapToSource(index).row()) for index in chosen]

    def compare_selected(self) -> None:
        from engine.storage.surface_file import load_surface

        if self.folder is None:
            return
        items = []
        for row in self.selected_variants() or self.model.rows:
            path = step_file(self.folder, row["variant"], "surface")
            if path.is_file():
                items.append((load_surface(path), panel_title(row)))
        if not items:
            QMessageBox.information(self, "Compare", "No computed surface among the selected variants yet.")
            return
        self.grid.set_surfaces(items)

    def open_report(self) -> None:
        if self.folder is not None and (self.folder / "report.html").is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder / "report.html")))

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.grid.close_plotter()
        super().closeEvent(event)
        release_plot_menus(self)


def panel_title(row: dict[str, Any]) -> PanelTitle:
    """The variant's accuracies, loss rise and (where its analysis ran) curvature, from its summary row."""
    rise, radius = row.get("loss_rise"), row.get("rise_radius")
    metric = row.get("rise_metric") or "loss"
    curvature = {"lambda_max": row.get("top_eigenvalue"), "trace": row.get("trace"), "sharpness": row.get("sharpness")}
    return PanelTitle(row["variant"], row.get("test_acc"), row.get("gen_error"),
                      (metric, radius, rise) if rise is not None and radius is not None else None,
                      curvature if all(isinstance(v, (int, float)) for v in curvature.values()) else None)


def open_study_dialog(window: QMainWindow, runner: JobRunner) -> StudyWindow | None:
    """Ask for a study folder (or a study .toml and an output folder) and show it."""
    path, _ = QFileDialog.getOpenFileName(window, "Open study: its study.toml, or study.json in a study folder",
                                          "", "Studies (*.toml study.json)")
    if not path:
        return None
    try:
        if path.endswith(".json"):
            return open_study_folder(window, runner, Path(path).parent)
        study = load_study(path)
        chosen = QFileDialog.getExistingDirectory(window, f"Folder for study {study.name}'s results")
        if not chosen:
            return None
        folder = Path(chosen)
    except LossLabError as exc:
        QMessageBox.warning(window, "Cannot open study", str(exc))
        return None
    study_window = StudyWindow(runner, window)
    study_window.open(study, folder)
    study_window.show()
    _join_workspace(window, folder)
    return study_window


def open_study_folder(window: QMainWindow, runner: JobRunner, folder: Path) -> StudyWindow:
    """Show the study in ``folder`` (its study.json), raising its window if one is open, and list
    it in the window's workspace."""
    folder = Path(folder).resolve()
    shown = next((w for w in window.findChildren(StudyWindow) if w.isVisible() and w.folder == folder), None)
    if shown is None:
        shown = StudyWindow(runner, window)
        shown.open_folder(folder)
    shown.show()
    shown.raise_()
    _join_workspace(window, folder)
    return shown


def _join_workspace(window: QMainWindow, folder: Path) -> None:
    """A study with a record is one row of the workspace (double-click opens it again)."""
    record = Path(folder) / RECORD
    if record.is_file() and hasattr(window, "workspace"):
        window.workspace.add(record)


def install_study_action(window: QMainWindow, runner: JobRunner) -> QAction:
    """File > Open study… in ``window``'s menu bar."""
    action = QAction("Open s&tudy…", window)
    action.setShortcut("Ctrl+Shift+O")
    action.setStatusTip("Open a study file or folder: its variants, their surfaces side by side, run or resume it")
    action.triggered.connect(lambda: open_study_dialog(window, runner))
    file_menu = window.menuBar().actions()[0].menu()
    file_menu.insertAction(file_menu.actions()[1], action)
    return action
