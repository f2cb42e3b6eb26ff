"""Analysis panel: curvature, sharpness and sub-level sets of a run's minimum, as a background job.

Runs :func:`engine.analysis.report.flatness_report` on the chosen run (and surface) with
progress and cancel; shows the numbers, the spectral density (log y) and, for a surface computed
with ``--hessian``, Li et al.'s convexity map |lambda_min / lambda_max| as a heatmap and as the 3D
surface's colours. The sub-level set's boundary is drawn on the heatmap view. Each report is
stored next to the run (``RUN.flatness-eEPOCH.json``), where the comparison view's titles find it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.forms import SettingsBinding, field_label
from app.worker import Job, JobError, JobRunner, JobState
from engine.analysis.convexity import convexity_ratio, has_eigenvalues
from engine.analysis.options import FlatnessOptions
from engine.analysis.sublevel import sublevel_labels
from engine.errors import ConfigError
from engine.events import CancelToken, EventSink, ProgressEvent
from engine.schema import settings_of
from engine.storage.surface_file import Surface

CHOSEN_ELSEWHERE = ("surface",)  # the Surface… button picks it
PANEL_DEFAULTS = {"subset": 500}  # a first look in well under a minute on a CPU
CONVEXITY_MAP = "viridis"
OPTIONS_PAGE, RESULTS_PAGE = 0, 1
LEVEL_PEN = pg.mkPen("#ff2d95", width=2.5)


class AnalysisPanel(QWidget):
    """Pick a run (and a surface), Analyse: the numbers, the density plot and the overlays."""

    def __init__(self, worker: JobRunner, views: Any | None = None, parent: QWidget | None = None,
                 options_type: type = FlatnessOptions) -> None:
        super().__init__(parent)
        self.worker, self.views = worker, views
        self.run_path: Path | None = None
        self.surface_path: Path | None = None
        self.job: Job | None = None
        self.report: dict[str, Any] = {}
        self.shown_surface: Surface | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(self._file_rows())
        layout.addLayout(self._buttons())
        self.progress = QProgressBar()
        self.status = QLabel("Choose a run file, then Analyse.")
        self.status.setWordWrap(True)
        self.status.setObjectName("analysis_status")
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        # Options and results share the dock's height in two tabs: with some twenty options above
        # them, the numbers and plots were scrolled out of sight when an analysis finished.
        self.pages = QTabWidget()
        self.pages.setObjectName("analysis_pages")
        self.pages.addTab(self._scrolled(self._form(options_type)), "Options")
        self.pages.addTab(self._results_page(), "Results")
        layout.addWidget(self.pages, 1)
        self.level_item = pg.PlotDataItem(pen=LEVEL_PEN, connect="finite")
        self._set_running(False)
        if views is not None and hasattr(views, "surface_shown"):
            views.surface_shown.connect(self.surface_shown)

    # ---- layout -----------------------------------------------------------------------
    def _form(self, options_type: type = FlatnessOptions) -> QFormLayout:
        """One generated editor (app.forms) per declared field of ``options_type``, in declaration order."""
        self.options_type = options_type
        self.binding = SettingsBinding(self, options_type)
        form = self.form_layout = QFormLayout()
        for s in settings_of(options_type):
            if s.name not in CHOSEN_ELSEWHERE:
                form.addRow(field_label(s), self.binding.add_editor(s))
        self.binding.load(options_type(**PANEL_DEFAULTS))
        self.editors = self.binding.widgets
        return form

    @staticmethod
    def _scrolled(inner: QFormLayout) -> QScrollArea:
        page = QWidget()
        page.setLayout(inner)
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QScrollArea.Shape.NoFrame)
        area.setWidget(page)
        return area

    def _results_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.results = QLabel("No analysis yet.")
        self.results.setObjectName("analysis_results")
        self.results.setTextFormat(Qt.TextFormat.RichText)
        self.results.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.results)
        self.density_plot = self._plot("eigenvalue", "density (log)")
        self.density_plot.setLogMode(y=True)
        self.density_curve = self.density_plot.plot(pen=pg.mkPen("#1f5fa8", width=2))
        layout.addWidget(self.density_plot, 1)
        layout.addLayout(self._overlay_controls())
        self.convexity_plot = self._plot("α", "β")
        self.convexity_image = pg.ImageItem(axisOrder="row-major")
        self.convexity_plot.addItem(self.convexity_image)
        self.convexity_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(CONVEXITY_MAP),
                                             interactive=False, colorMapMenu=False, label="|λmin/λmax|")
        self.convexity_bar.setImageItem(self.convexity_image, insert_in=self.convexity_plot.getPlotItem())
        layout.addWidget(self.convexity_plot, 1)
        return page

    def _file_rows(self) -> QFormLayout:
        rows = QFormLayout()
        self.run_label, self.surface_label = QLabel("no run chosen"), QLabel("none (optional)")
        for label, button_text, slot, key in ((self.run_label, "Run…", self._choose_run, "run"),
                                              (self.surface_label, "Surface…", self._choose_surface, "surface")):
            label.setObjectName(f"analysis_{key}_label")
            row = QHBoxLayout()
            row.addWidget(label, 1)
            button = QPushButton(button_text)
            button.clicked.connect(slot)
            row.addWidget(button)
            rows.addRow("Run file" if key == "run" else "Surface", row)
        return rows

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = QPushButton("Analyse")
        self.start_button.setObjectName("analysis_start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("analysis_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        return row

    def _overlay_controls(self) -> QVBoxLayout:
        box = QVBoxLayout()
        self.convexity_check = QCheckBox("Colour the 3D surface by |λmin/λmax| (needs --hessian)")
        self.convexity_check.setObjectName("analysis_convexity_overlay")
        self.level_check = QCheckBox("Draw the sub-level set's boundary on the heatmap")
        self.level_check.setObjectName("analysis_level_overlay")
        for check in (self.convexity_check, self.level_check):
            check.toggled.connect(self.apply_overlays)
            box.addWidget(check)
        return box

    @staticmethod
    def _plot(bottom: str, left: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setLabel("bottom", bottom)
        plot.setLabel("left", left)
        plot.setMinimumHeight(160)
        return plot

    # ---- inputs -----------------------------------------------------------------------
    def _choose_run(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Run file", "", "LossLab runs (*.h5);;All files (*)")
        if path:
            self.set_run(path)

    def _choose_surface(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Surface file", "", "Surfaces (*.h5);;All files (*)")
        if path:
            self.set_surface(path)

    def set_run(self, path: str | Path) -> None:
        self.run_path = Path(path)
        self.run_label.setText(self.run_path.name)
        self.run_label.setToolTip(str(self.run_path))
        self._set_running(False)

    def set_surface(self, path: str | Path | None) -> None:
        self.surface_path = Path(path) if path else None
        self.surface_label.setText(self.surface_path.name if self.surface_path else "none (optional)")

    def options(self) -> Any:
        """The form's options (ConfigError naming the field when one is refused)."""
        surface = str(self.surface_path) if self.surface_path else None
        return self.options_type(**self.binding.values(), surface=surface)

    # ---- the job ----------------------------------------------------------------------
    def start(self) -> Job | None:
        if self.run_path is None:
            self.status.setText("Choose a run file first.")
            return None
        try:
            options = self.options()
        except (ConfigError, ValueError) as exc:
            self.status.setText(f"<span style='color:#b00020'>{exc}</span>")
            self.pages.setCurrentIndex(OPTIONS_PAGE)
            return None
        run_path, report = self.run_path, {}
        self.report = report

        def run(sink: EventSink, token: CancelToken) -> dict[str, Any]:
            from engine.analysis.report import flatness_report, report_path, write_report

            try:
                return flatness_report(str(run_path), options, report, on_event=sink, cancel=token)
            finally:  # a cancel keeps what was computed, on screen and on disk
                if "top_eigenvalues" in report:
                    write_report(report, report_path(run_path, report["checkpoint_epoch"]))

        job = self.job = Job("analysis", f"Analysis of {run_path.stem}", run)
        job.progress.connect(self._progress)
        job.finished.connect(self.show_report)
        job.cancelled.connect(lambda: self._ended("cancelled: the numbers computed so far are shown"))
        job.failed.connect(self._failed)
        job.state_changed.connect(lambda state: self._set_running(state.is_active))
        self.progress.setValue(0)
        self.status.setText("Analysing…")
        self.pages.setCurrentIndex(RESULTS_PAGE)
        self.worker.submit(job)
        return job

    def cancel(self) -> None:
        if self.job is not None and self.job.state.is_active:
            self.job.cancel()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and self.run_path is not None)
        self.cancel_button.setEnabled(running)

    def _progress(self, event: ProgressEvent) -> None:
        if event.stage == "flatness":
            self.progress.setValue(int(100 * event.fraction))
            if event.message:
                self.status.setText(event.message)
        else:
            step = self.status.text().split(" — ")[0]
            self.status.setText(f"{step} — {event.stage} {event.done}/{event.total}")

    def _ended(self, message: str) -> None:
        self.status.setText(message)
        self.show_report(self.report)

    def _failed(self, error: JobError) -> None:
        where = f" ({error.where})" if error.where else ""
        self.status.setText(f"<span style='color:#b00020'>{error.message}{where}</span>")

    # ---- results ----------------------------------------------------------------------
    def show_report(self, report: dict[str, Any]) -> None:
        self.report = report
        if self.job is not None and self.job.state is JobState.FINISHED:
            self.status.setText("Analysis complete; stored next to the run file.")
        self.progress.setValue(100 if "sharpness" in report else self.progress.value())
        self.results.setText(results_html(report))
        density = report.get("density")
        if density:
            values = np.asarray(density["values"], dtype=float)
            # tails far below the peak only stretch a log axis: floor them six decades down
            self.density_curve.setData(np.asarray(density["grid"]), np.clip(values, values.max() * 1e-6, None))
        else:
            self.density_curve.setData([], [])
        self.apply_overlays()

    def surface_shown(self, surface: Surface) -> None:
        """The views show another surface: redraw the convexity map and the overlays for it."""
        self.shown_surface = surface
        ready = surface.y is not None and has_eigenvalues(surface)
        self.convexity_check.setEnabled(ready)
        if ready:
            ratio = convexity_ratio(surface)
            self.convexity_image.setImage(ratio, autoLevels=False)
            self.convexity_image.setRect(_extent(surface))
            self.convexity_bar.setLevels(convexity_range(ratio))
        else:
            self.convexity_image.clear()
        self.apply_overlays()

    def apply_overlays(self) -> None:
        views, surface = self.views, self.shown_surface
        if views is None or surface is None or surface.y is None:
            return
        on = self.convexity_check.isChecked() and has_eigenvalues(surface)
        overlay = None
        if on:
            ratio = convexity_ratio(surface)
            overlay = (ratio, CONVEXITY_MAP, convexity_range(ratio), "|min/max eig|")
        views.view3d.set_color_overlay(overlay)
        self._draw_level(views.heatmap, surface)

    def _draw_level(self, heatmap: Any, surface: Surface) -> None:
        level = self.report.get("sublevel", {}).get("level")
        metric = self.report.get("sublevel", {}).get("metric")
        if self.level_item.scene() is None:
            heatmap.plot.addItem(self.level_item)
        if not self.level_check.isChecked() or level is None or metric not in surface.values:
            self.level_item.setData([], [])
            return
        xs, ys = level_boundary(surface.x, surface.y, np.asarray(surface.values[metric], float), level)
        self.level_item.setData(xs, ys)


def convexity_range(ratio: np.ndarray) -> tuple[float, float]:
    """0 (convex) up to the largest ratio shown, at most 1 (as much negative as positive curvature)."""
    finite = ratio[np.isfinite(ratio)]
    return 0.0, float(min(1.0, max(finite.max(), 1e-3))) if finite.size else 1.0


def level_boundary(x: np.ndarray, y: np.ndarray, values: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """The cell edges between points inside and outside ``{value <= level}``: exactly the 4-neighbour
    sets whose components the report counts, drawn as NaN-separated segments."""
    inside = sublevel_labels(values, level)[0] > 0
    dx = (x[-1] - x[0]) / max(len(x) - 1, 1) / 2
    dy = (y[-1] - y[0]) / max(len(y) - 1, 1) / 2
    xs: list[float] = []
    ys: list[float] = []
    for j, i in zip(*np.nonzero(inside[:, :-1] != inside[:, 1:])):  # vertical edges
        xs += [x[i] + dx, x[i] + dx, math.nan]
        ys += [y[j] - dy, y[j] + dy, math.nan]
    for j, i in zip(*np.nonzero(inside[:-1, :] != inside[1:, :])):  # horizontal edges
        xs += [x[i] - dx, x[i] + dx, math.nan]
        ys += [y[j] + dy, y[j] + dy, math.nan]
    return np.asarray(xs), np.asarray(ys)


def _extent(surface: Surface):
    from PySide6.QtCore import QRectF

    x, y = surface.x, surface.y
    dx = (x.max() - x.min()) / max(len(x) - 1, 1)
    dy = (y.max() - y.min()) / max(len(y) - 1, 1)
    return QRectF(x.min() - dx / 2, y.min() - dy / 2, dx * len(x), dy * len(y))


def _row(label: str, value: str) -> str:
    return f"<tr><td>{label}</td><td align='right'><b>{value}</b></td></tr>"


def results_html(report: dict[str, Any]) -> str:
    """The report's numbers as a small table (what is not computed yet is left out)."""
    rows = []
    if "top_eigenvalues" in report:
        rows.append(_row("λmax (top-k)", ", ".join(f"{v:.4g}" for v in report["top_eigenvalues"])))
    if "min_eigenvalue" in report:
        ratio = report["eigenvalues"].get("ratio_min_max", math.nan)
        rows.append(_row("λmin · |λmin/λmax|", f"{report['min_eigenvalue']:.4g} · {ratio:.3g}"))
    if "trace" in report:
        rows.append(_row("trace ± s.e.", f"{report['trace']['mean']:.4g} ± {report['trace']['stderr']:.2g}"))
    for key, label in (("relative_flatness", "relative flatness"), ("scale_invariant", "scale-invariant")):
        if key in report:
            rows.append(_row(label, f"{report[key]['value']:.4g}"))
    if "sharpness" in report:
        s = report["sharpness"]
        rows.append(_row(f"ε-sharpness (ε={s['epsilon']:g})", f"{s['value']:.4g} % · adaptive {s['adaptive']:.3g}"))
    if "average_sharpness" in report:
        a, f = report["average_sharpness"], report["flat_fraction"]
        rows.append(_row(f"average sharpness (r={a['radius']:g})", f"{a['value']:.4g} · flat {f['value']:.2f}"))
    if "sublevel" in report:
        s = report["sublevel"]
        rows.append(_row(f"{s['metric']} ≤ {s['level']:.4g}",
                         f"{s['components']} comp. · area {s['area_fraction']:.2f} · centre "
                         f"{s['centre_component_area']:.2f}"))
    if not rows:
        return ""
    source = (f"{report.get('split', '')} split, {report.get('subset', '?')} samples, seed {report.get('seed', '?')}, "
              f"{report.get('curvature', 'hessian')}")
    return f"<table width='100%'>{''.join(rows)}</table><small>{source}</small>"
