"""The workspace: every run, surface, 1D curve and study opened or computed in this session, in one list.

Modelled on napari's layer list and ParaView's pipeline browser: each item has a visibility
check box, a colour, an editable name, and can be closed; "Compare selected" puts 2 to 4
surfaces side by side in the Compare view. The "Workspace" tab draws every visible 2D surface
in one 3D scene (side by side or stacked) next to every visible 1D curve, overlaid with a legend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QColorDialog,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.file_kinds import classify_file
from app.views.colormap_preview import add_previews
from app.views.curve_1d import PALETTE, Curve1DView
from app.views.multi_scene import LAYOUTS, MultiSurfaceView, SceneEntry
from engine.errors import ConfigError, LossLabError
from engine.storage.surface_file import Surface, load_surface
from engine.study.record import read_record

if TYPE_CHECKING:
    from app.main_window import MainWindow

KINDS = ("run", "surface", "curve", "study")


@dataclass
class WorkspaceItem:
    """One entry of the workspace (what the project file stores of it)."""

    path: str
    kind: str  # one of KINDS; a 1D surface is a "curve", a study folder's study.json a "study"
    name: str
    colour: str
    visible: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def default_name(path: Path, kind: str) -> str:
    """The file's stem; for a study, its name and folder (every study record is "study.json")."""
    if kind != "study":
        return path.stem
    record = read_record(path.parent) or {}
    return f"{record.get('study', 'study')} ({path.parent.name})"


class Workspace(QObject):
    """The items and their surfaces (loaded once); emits :attr:`changed` after every edit."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[WorkspaceItem] = []
        self.surfaces: dict[str, Surface] = {}  # path -> loaded surface (surfaces and curves)
        self._colours_used = 0

    def find(self, path: str | Path) -> WorkspaceItem | None:
        key = str(Path(path).resolve())
        return next((i for i in self.items if i.path == key), None)

    def add_file(self, path: str | Path, name: str = "", colour: str = "", visible: bool = True) -> WorkspaceItem:
        """Add a run, surface or study (again: the existing item); raises LossLabError for other files."""
        existing = self.find(path)
        if existing is not None:
            return existing
        kind = classify_file(path)
        if kind not in ("run", "surface", "study"):
            raise ConfigError("file", str(path), "a run or surface file (.h5) or a study folder's study.json",
                              "workspace")
        key = str(Path(path).resolve())
        if kind == "surface":
            surface = load_surface(key)
            self.surfaces[key] = surface
            kind = "surface" if surface.is_2d else "curve"
        item = WorkspaceItem(key, kind, name or default_name(Path(key), kind), colour or self._next_colour(), visible)
        self.items.append(item)
        self.changed.emit()
        return item

    def _next_colour(self) -> str:
        colour = PALETTE[self._colours_used % len(PALETTE)]
        self._colours_used += 1
        return colour

    def remove(self, item: WorkspaceItem) -> None:
        self.items.remove(item)
        self.surfaces.pop(item.path, None)
        self.changed.emit()

    def clear(self) -> None:
        self.items.clear()
        self.surfaces.clear()
        self._colours_used = 0
        self.changed.emit()

    def update(self, item: WorkspaceItem, **changes: object) -> None:
        for key, value in changes.items():
            setattr(item, key, value)
        self.changed.emit()

    def visible(self, kind: str) -> list[WorkspaceItem]:
        return [i for i in self.items if i.kind == kind and i.visible]


class WorkspaceView(QSplitter):
    """The "Workspace" tab: visible 2D surfaces in one 3D scene, visible 1D curves overlaid."""

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)  # the centre is wider than high beside docks
        self.setObjectName("workspace_view")
        self.workspace = workspace
        self.scene = MultiSurfaceView()
        self.curves = Curve1DView()
        self.addWidget(self.scene)
        self.addWidget(self.curves)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)
        self.setSizes([600, 400])
        self.layout_name = LAYOUTS[0]

    def redraw(self, settings) -> None:
        ws = self.workspace
        entries = [SceneEntry(i.name, ws.surfaces[i.path], i.colour) for i in ws.visible("surface")]
        self.scene.show_entries(entries, settings, self.layout_name)
        self.scene.setVisible(bool(entries))
        curves = ws.visible("curve")
        self.curves.settings = settings
        self.curves.curves.clear()
        self.curves.colours = {i.name: i.colour for i in curves}
        for item in curves:
            self.curves.add_surface(ws.surfaces[item.path], item.name)
        if not curves:
            self.curves.clear()
        self.curves.setVisible(bool(curves))


def swatch(colour: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class WorkspaceDock(QWidget):
    """The list with its buttons; the welcome text while it is empty."""

    compare_requested = Signal(list)  # surface paths
    show_requested = Signal(str)  # path to show in the single-surface views
    demo_requested = Signal()

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.tree = QTreeWidget()
        self.tree.setObjectName("workspace_list")
        self.tree.setHeaderLabels(["Name", "Kind"])
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.setRootIsDecorated(False)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        header.setSectionResizeMode(1, header.ResizeMode.ResizeToContents)
        self.tree.itemChanged.connect(self._edited)
        self.tree.itemDoubleClicked.connect(lambda item, _c: self.show_requested.emit(self._item(item).path))
        self.welcome = welcome_box(self.demo_requested.emit)
        self.layout_choice = QComboBox()
        self.layout_choice.addItems(LAYOUTS)
        self.layout_choice.setToolTip("How several surfaces share the 3D scene of the Workspace tab")
        buttons = QHBoxLayout()
        for text, slot, tip in (("Colour…", self._choose_colour, "colour of the selected item"),
                                ("Compare selected", self._compare, "2 to 4 selected surfaces side by side"),
                                ("Close", self._close_selected, "remove the selected items (files stay on disk)")):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.welcome)
        layout.addWidget(self.tree, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Surfaces:"))
        row.addWidget(self.layout_choice, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        workspace.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        for item in self.workspace.items:
            row = QTreeWidgetItem([item.name, item.kind])
            row.setFlags(row.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
            row.setCheckState(0, Qt.CheckState.Checked if item.visible else Qt.CheckState.Unchecked)
            row.setIcon(0, swatch(item.colour))
            row.setToolTip(0, item.path)
            row.setData(0, Qt.ItemDataRole.UserRole, item.path)
            self.tree.addTopLevelItem(row)
        self.tree.resizeColumnToContents(1)
        self.tree.blockSignals(False)
        self.welcome.setVisible(not self.workspace.items)

    def _item(self, row: QTreeWidgetItem) -> WorkspaceItem:
        return self.workspace.find(row.data(0, Qt.ItemDataRole.UserRole))

    def selected(self) -> list[WorkspaceItem]:
        return [self._item(row) for row in self.tree.selectedItems()]

    def _edited(self, row: QTreeWidgetItem, _column: int) -> None:
        item = self._item(row)
        name = row.text(0).strip() or item.name
        visible = row.checkState(0) == Qt.CheckState.Checked
        if (name, visible) != (item.name, item.visible):
            # After this signal returns: the update rebuilds the list, which deletes ``row``.
            QTimer.singleShot(0, lambda: self.workspace.update(item, name=name, visible=visible))

    def _choose_colour(self) -> None:
        for item in self.selected()[:1]:
            colour = QColorDialog.getColor(QColor(item.colour), self, f"Colour of {item.name}")
            if colour.isValid():
                self.workspace.update(item, colour=colour.name())

    def _compare(self) -> None:
        self.compare_requested.emit([i.path for i in self.selected() if i.kind == "surface"])

    def _close_selected(self) -> None:
        for item in self.selected():
            self.workspace.remove(item)


def welcome_box(run_demo) -> QWidget:
    """The first-launch guide: the path through the app and a one-click demo."""
    box = QWidget()
    box.setObjectName("workspace_welcome")
    text = QLabel("<b>Welcome to LossLab.</b> The path through it:<ol>"
                  "<li><b>Experiment</b>: choose a preset (or load a .toml)</li>"
                  "<li><b>Training</b>: Start, and watch the curves</li>"
                  "<li><b>Surface</b>: compute the loss around the trained model</li>"
                  "<li><b>Inspect</b>: the 3D view, heatmap, 1D curves; compare runs here</li></ol>"
                  "Or let the demo do it all: two digits models (unbiased and 30 % mislabelled), "
                  "their surfaces and curves, in about a minute.")
    text.setWordWrap(True)
    button = QPushButton("Run the demo")
    button.setObjectName("run_demo")
    button.clicked.connect(lambda: run_demo())
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(text)
    layout.addWidget(button)
    return box


class WorkspaceController(QObject):
    """Connects the workspace to the window: dock, tab, files opened or computed, the demo job."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.model = Workspace(self)
        self.dock = WorkspaceDock(self.model)
        self.view = WorkspaceView(self.model)
        window.views.addTab(self.view, "Workspace")
        self.model.changed.connect(self.redraw)
        self.dock.layout_choice.currentTextChanged.connect(self._layout_chosen)
        self.dock.compare_requested.connect(self._compare)
        self.dock.show_requested.connect(lambda path: window.open_file(path))
        self.dock.demo_requested.connect(self.run_demo)
        window.views.controls.changed.connect(lambda _s: self.redraw())
        add_previews(window.views.controls.colormap)
        window.surface.surface_ready.connect(self._add_computed)
        window.training.run_ready.connect(self._add_computed)

    def add(self, path: str | Path) -> WorkspaceItem:
        return self.model.add_file(path)

    def _add_computed(self, path: str) -> None:
        try:
            self.add(path)
        except LossLabError as exc:  # e.g. a surface cancelled before its file was written
            self.w.statusBar().showMessage(f"Not added to the workspace: {exc}", 8000)

    def show_tab(self) -> None:
        self.w.views.setCurrentWidget(self.view)
        QApplication.processEvents()  # the scene gets its size before the camera fits it
        self.view.scene.fit()

    def redraw(self) -> None:
        self.view.redraw(self.w.views.settings)

    def _layout_chosen(self, name: str) -> None:
        self.view.layout_name = name
        self.redraw()

    def _compare(self, paths: list[str]) -> None:
        self.w.files.compare_paths(paths)

    def run_demo(self) -> None:
        """The quick demo as a job with progress; its runs, surfaces and curves join the workspace."""
        from app.worker import Job
        from engine.demo import QUICK, run_demo

        folder = Path(self.w.settings.runs_folder()) / "losslab-demo"
        job = Job("demo", "Demo", lambda sink, token: run_demo(folder, QUICK, on_event=sink, cancel=token),
                  output=folder)
        job.finished.connect(self._demo_done)
        self.w.worker.submit(job)

    def _demo_done(self, result) -> None:
        for path in [*result.runs.values(), *result.surfaces.values(), *result.curves.values()]:
            self.add(path)
        self.show_tab()

    # -- the project file -----------------------------------------------------------------
    def save_project(self, path: str | Path) -> Path:
        from app.project_file import project_data, save_project

        plotter = self.view.scene.plotter
        camera = [list(map(float, v)) for v in plotter.camera_position] if self.view.scene.entries else None
        data = project_data(self.model, self.w.views.settings, self.view.layout_name, camera,
                            Path(path).resolve().parent)
        return save_project(path, data)

    def open_project(self, path: str | Path) -> list[str]:
        """Replace the workspace with a project's; returns one message per file that could not open."""
        from app.project_file import read_project

        data = read_project(path)
        problems = []
        self.model.blockSignals(True)  # one redraw at the end, not one per file
        try:
            self.model.clear()
            for item in data["items"]:
                try:
                    self.model.add_file(item["path"], item["name"], item["colour"], item["visible"])
                except LossLabError as exc:
                    problems.append(str(exc))
        finally:
            self.model.blockSignals(False)
        self.w.views.controls.set_settings(data["display"], emit=False)
        self.w.views.apply_settings(data["display"])
        self.dock.layout_choice.setCurrentText(data["layout"])
        self.model.changed.emit()
        if data["camera"] is not None and self.view.scene.entries:
            self.view.scene.plotter.camera_position = [tuple(v) for v in data["camera"]]
            self.view.scene.plotter.render()
        self.show_tab()
        return problems

    def install_menu(self) -> None:
        """Open/Save workspace in the File menu, above its Export submenu."""
        from PySide6.QtGui import QAction

        menu = next(a.menu() for a in self.w.menuBar().actions() if a.text() == "&File")
        export = next((a for a in menu.actions() if a.text() == "E&xport"), None)
        for text, slot, shortcut in (("Open &workspace…", self._open_dialog, "Ctrl+Shift+O"),
                                     ("Save w&orkspace…", self._save_dialog, "Ctrl+Shift+S")):
            action = QAction(text, self.w)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            menu.insertAction(export, action)

    def _open_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from app.project_file import FILTER

        path, _ = QFileDialog.getOpenFileName(self.w, "Open workspace", self.w.settings.last_folder(), FILTER)
        if path:
            self.w.open_file(path)

    def _save_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from app.project_file import FILTER, SUFFIX

        start = str(Path(self.w.settings.last_folder()) / f"workspace{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self.w, "Save workspace", start, FILTER)
        if path:
            written = self.w.files.guarded(lambda: self.save_project(path), "Cannot save the workspace")
            if written is not None:
                self.w.remember_file(written)
                self.w.statusBar().showMessage(f"Wrote {written}", 8000)
