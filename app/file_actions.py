"""Opening files and every export the window offers: VTK/PNG/CSV, pictures, orbit movies.

Each dialog method asks for a path and calls a plain method (``open``, ``export_to``,
``save_view_picture``...) that tests and scripts can call directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QProgressDialog

from app.export_dialog import MOVIES, PICTURES, ExportSpec, ask_export
from app.file_kinds import OPEN_FILTER, SURFACE_FILTER, classify_file
from app.panels.connect_dialog import show_connect_dialog
from app.panels.study_panel import open_study_folder
from app.view_export import write_movie, write_picture
from app.worker import describe_error
from engine.errors import LossLabError
from engine.export import ExportOptions, export_surface
from engine.storage.surface_file import Surface

if TYPE_CHECKING:
    from app.main_window import MainWindow

T = TypeVar("T")

EXPORT_FILTERS = {
    "vts": "VTK structured grid for ParaView (*.vts)",
    "vtp": "VTK polygon data (*.vtp)",
    "vtk": "Legacy VTK (*.vtk)",
    "png": "PNG picture (*.png)",
    "csv": "CSV table (*.csv)",
}


class FileActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window

    # -- opening ------------------------------------------------------------------------
    def open(self, path: str | Path) -> str:
        """Show a run (curves, metrics), a surface (views), an experiment (form) or a workspace
        project; runs and surfaces also join the workspace."""
        from app.project_file import is_project_file

        if is_project_file(path):
            problems = self.w.workspace.open_project(path)
            if problems:
                raise LossLabError(f"{path}: opened, but some files are missing:\n" + "\n".join(problems))
            return "project"
        kind = classify_file(path)
        if kind in ("run", "surface"):  # a study joins the workspace when its window opens
            self.w.workspace.add(path)
        if kind == "experiment":
            if not self.w.experiment.load_toml(path):
                raise LossLabError(self.w.experiment.status.text())
            self.w.show_panel("experiment")
        elif kind == "curve":
            show_connect_dialog(self.w).open_file(path)
        elif kind == "study":
            open_study_folder(self.w, self.w.worker, Path(path).parent)
        elif kind == "run":
            self.w.training.show_run(path)
            self.w.surface.add_run(str(path))
            self.w.show_panel("training")
        else:
            surface = self.w.views.show_surface_file(path)
            run_file = Path(str(surface.attrs.get("run_file", "")))
            if run_file.suffix and run_file.is_file():  # offer its run for more surfaces
                self.w.surface.add_run(str(run_file))
        return kind

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.w, "Open run, surface or experiment",
                                              self.w.settings.last_folder(), OPEN_FILTER)
        if path:
            self.w.open_file(path)

    # -- exports ------------------------------------------------------------------------
    def _ask_save(self, caption: str, suggested: str, filters: str) -> Path | None:
        start = str(Path(self.w.settings.last_folder()) / suggested)
        path, _ = QFileDialog.getSaveFileName(self.w, caption, start, filters)
        if not path:
            return None
        self.w.settings.set_last_folder(path)
        return Path(path)

    def _current_surface(self) -> Surface:
        surface = self.w.views.surface
        if surface is None:
            raise LossLabError("no surface is shown: compute one in the Surface panel or open a surface file")
        return surface

    def export_to(self, path: str | Path, size: tuple[int, int] = (1600, 1200)) -> Path:
        """Export the shown surface with the metric, log scale, clamp and z scale now on screen."""
        surface = self._current_surface()
        s = self.w.views.settings
        metric = self.w.views.current_metric()
        options = ExportOptions(metric=metric, log_scale=s.log_scale, clamp_max=s.clamp_max, z_scale=s.z_scale,
                                size=size, colormap=s.colormap, contours=s.contour_count,
                                color_range=s.color_range)  # the view's colours, not the data's range
        return export_surface(surface, path, options=options)

    def export_dialog(self, kind: str | None = None) -> None:
        """The one export dialog (``kind`` preselected); writes the file and says where it went."""
        def go() -> None:
            surface = self.w.views.surface
            stem = Path(str(getattr(surface, "path", "") or "losslab-view")).stem
            spec = ask_export(self.w, stem, kind)
            if spec is not None:
                self._announce(self.write_export(spec))

        self._guard(go)

    def write_export(self, spec: ExportSpec) -> Path:
        """Write ``spec``: a picture or movie of the current view, else the shown surface's data."""
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        view = self.w.views.currentWidget()
        if spec.kind in PICTURES:
            return write_picture(view, spec)
        if spec.kind in MOVIES:
            return self._movie(view, spec)
        return self.export_to(spec.path, spec.size)

    def _movie(self, view, spec: ExportSpec) -> Path:
        """Rendering needs the GUI thread: the progress dialog keeps the window painted and offers Cancel."""
        progress = QProgressDialog("Rendering the orbit movie…", "Cancel", 0, spec.frames, self.w)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)

        def frame(done: int, _total: int) -> bool:
            progress.setValue(done)
            QApplication.processEvents()
            return not progress.wasCanceled()

        try:
            return write_movie(view, spec, frame)
        finally:
            progress.close()

    def save_view_picture(self, path: str | Path, size: tuple[int, int] | None = None) -> Path:
        """A PNG of the 3D view at ``size`` (default: as shown)."""
        self._current_surface()
        return self.w.views.view3d.screenshot(path, size)

    def screenshot_dialog(self) -> None:
        self.export_dialog("png")

    def save_orbit_movie(self, path: str | Path, frames: int = 72) -> Path:
        """One turn around the 3D view as GIF or MP4, with a progress dialog (rendering needs
        the GUI thread, so the dialog keeps the window painted between frames)."""
        self._current_surface()
        progress = QProgressDialog("Rendering the orbit…", "", 0, frames, self.w)
        progress.setCancelButton(None)
        progress.setWindowModality(Qt.WindowModality.WindowModal)

        def frame(done: int, _total: int) -> None:
            progress.setValue(done)
            QApplication.processEvents()

        try:
            return self.w.views.view3d.orbit_movie(path, frames=frames, on_frame=frame)
        finally:
            progress.close()

    def movie_dialog(self) -> None:
        self.export_dialog("gif")

    def csv_dialog(self) -> None:
        self.export_dialog("csv")

    def save_window_picture(self, path: str | Path) -> Path:
        """A PNG of the whole window, the 3D view included."""
        path = Path(path)
        self.w.experiment.settle()  # the bias preview belongs in the picture
        for _ in range(3):  # let queued answers, layout and renders land before grabbing
            QApplication.processEvents()
        self.w.views.view3d.plotter.render()
        if not self.w.grab().save(str(path)):
            raise LossLabError(f"{path}: could not write the picture (folder missing or not writable?)")
        return path

    def window_picture_dialog(self) -> None:
        def go() -> None:
            path = self._ask_save("Save picture of the window", "losslab-window.png", "PNG picture (*.png)")
            if path is not None:
                self._report(self.save_window_picture(path))

        self._guard(go)

    def compare_paths(self, paths: list[str]) -> None:
        """2 to 4 surface files in the Compare view (an error dialog otherwise)."""
        self.guarded(lambda: self.w.views.compare_files(paths), "Cannot compare")

    def compare_dialog(self) -> None:
        def go() -> None:
            paths, _ = QFileDialog.getOpenFileNames(self.w, "Choose 2 to 4 surfaces to compare",
                                                    self.w.settings.last_folder(), SURFACE_FILTER)
            if paths:
                self.w.views.compare_files(paths)

        self._guard(go, "Cannot compare")

    # -- feedback -------------------------------------------------------------------------
    def _report(self, path: Path) -> None:
        self.w.statusBar().showMessage(f"Wrote {path}", 8000)

    def _announce(self, path: Path) -> None:
        """Where the file went: in the status bar and in a box that does not block the window."""
        self._report(path)
        box = QMessageBox(QMessageBox.Icon.Information, "Export finished",
                          f"Saved to:\n{Path(path).resolve()}", parent=self.w)
        box.setObjectName("export_done")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
        self.last_message = box

    def guarded(self, action: Callable[[], T], title: str = "Export failed") -> T | None:
        """``action()``'s result, or None after showing its LossLabError in a dialog."""
        try:
            return action()
        except LossLabError as exc:
            self.w.show_error(title, describe_error(exc))
            return None

    _guard = guarded
