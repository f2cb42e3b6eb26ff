"""The main window's actions, menus and toolbar in one table, so shortcuts and icons agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from app.resources import icon

if TYPE_CHECKING:
    from app.main_window import MainWindow

StandardKey = QKeySequence.StandardKey
CAMERA_KEYS = {"top": "Ctrl+1", "iso": "Ctrl+2", "front": "Ctrl+3", "reset": "Ctrl+0"}


def _action(window: MainWindow, text: str, slot: Callable[[], object], icon_name: str | None = None,
            shortcut: str | QKeySequence.StandardKey | None = None, tip: str = "") -> QAction:
    action = QAction(icon(icon_name) if icon_name else QIcon(), text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setStatusTip(tip or text.replace("&", "").rstrip("…"))
    keys = f" ({action.shortcut().toString()})" if shortcut else ""
    action.setToolTip(action.statusTip() + keys)
    action.triggered.connect(lambda _checked=False: slot())
    return action


def build_actions(w: MainWindow) -> dict[str, QAction]:
    files = w.files
    return {
        "open": _action(w, "&Open run or surface…", files.open_dialog, "open", StandardKey.Open,
                        "Open a run file, a surface file (LossLab or loss-landscape .h5) or an experiment"),
        "load_experiment": _action(w, "&Load experiment…", w.experiment.open_dialog, "open_experiment",
                                   "Ctrl+L"),
        "save_experiment": _action(w, "&Save experiment…", w.experiment.save_dialog, "save_experiment",
                                   StandardKey.Save),
        "export": _action(w, "&Export surface…", files.export_dialog, "export", "Ctrl+E",
                          "Write the surface as .vts/.vtp/.vtk (ParaView), PNG or CSV"),
        "screenshot": _action(w, "Save &picture of the 3D view…", files.screenshot_dialog, "screenshot",
                              "Ctrl+Shift+P"),
        "movie": _action(w, "Save orbit &movie…", files.movie_dialog, "movie", "Ctrl+Shift+M"),
        "window_picture": _action(w, "Save picture of the &window…", files.window_picture_dialog, None,
                                  "Ctrl+Shift+W"),
        "csv": _action(w, "Export curves as &CSV…", files.csv_dialog, "csv", "Ctrl+Shift+C",
                       "Write the 1D surface curve (or the training curves) as CSV"),
        "compare": _action(w, "&Compare surfaces…", files.compare_dialog, "compare", "Ctrl+K",
                           "Open 2 to 4 surfaces side by side with one colour scale"),
        "quit": _action(w, "&Quit", w.close, None, StandardKey.Quit),
        "start": _action(w, "&Start training", w.training.start, "start", "Ctrl+R"),
        "pause": _action(w, "&Pause training", w.training.pause, "pause", "Ctrl+P"),
        "stop": _action(w, "S&top training", w.training.stop, "stop", "Ctrl+."),
        "resume": _action(w, "&Resume training", w.training.resume, "resume", "Ctrl+Shift+R"),
        "surface": _action(w, "Compute s&urface", w.surface.start, "surface", "Ctrl+U"),
        "cancel_surface": _action(w, "&Cancel surface", w.surface.cancel, "cancel", "Ctrl+Shift+U"),
        "about": _action(w, "&About LossLab", w.show_about, "about"),
    }


def build_menus(w: MainWindow, actions: dict[str, QAction]) -> QMenu:
    """File, Run, View and Help menus; returns the Open Recent submenu (refilled by the window)."""
    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(actions["open"])
    recent = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    for name in ("load_experiment", "save_experiment"):
        file_menu.addAction(actions[name])
    file_menu.addSeparator()
    export_menu = file_menu.addMenu(icon("export"), "E&xport")
    for name in ("export", "screenshot", "movie", "window_picture", "csv"):
        export_menu.addAction(actions[name])
    file_menu.addSeparator()
    file_menu.addAction(actions["quit"])
    run_menu = bar.addMenu("&Run")
    for name in ("start", "pause", "stop", "resume"):
        run_menu.addAction(actions[name])
    run_menu.addSeparator()
    run_menu.addAction(actions["surface"])
    run_menu.addAction(actions["cancel_surface"])
    view_menu = bar.addMenu("&View")
    for key, dock in w.docks.items():
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence(f"Alt+{list(w.docks).index(key) + 1}"))
        view_menu.addAction(toggle)
    view_menu.addSeparator()
    view_menu.addAction(actions["compare"])
    for preset, keys in CAMERA_KEYS.items():
        view_menu.addAction(_action(w, f"Camera: {preset}", lambda p=preset: w.views.set_camera(p),
                                    "reset" if preset == "reset" else None, keys))
    view_menu.addAction(_action(w, "&Views only (hide or show the panels)", w.toggle_panels, None, "F11",
                                "Give the 3D, heatmap and comparison views the whole window"))
    view_menu.addAction(_action(w, "Restore default &layout", w.default_layout))
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(actions["about"])
    return recent


def build_toolbar(w: MainWindow, actions: dict[str, QAction]) -> QToolBar:
    bar = w.addToolBar("Main")
    bar.setObjectName("main_toolbar")
    groups = [("open", "save_experiment"), ("start", "pause", "stop", "resume"),
              ("surface", "cancel_surface"), ("export", "screenshot", "compare")]
    for i, group in enumerate(groups):
        if i:
            bar.addSeparator()
        for name in group:
            bar.addAction(actions[name])
    return bar
