"""Starting the desktop app: the QApplication, the main window, and the screenshot mode."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")  # pyvistaqt (via qtpy) must use the same binding as we do

from PySide6.QtCore import QCoreApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.settings import APPLICATION, ORGANISATION  # noqa: E402
from engine.errors import LossLabError  # noqa: E402
from engine.version import __version__  # noqa: E402


def check_display() -> None:
    """Qt aborts the whole process without a display; say what to do instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LossLabError("no display found (DISPLAY is not set); on a server run the app under a "
                           "virtual one: xvfb-run -a -s '-screen 0 1280x1024x24' losslab gui ...")


def create_application(argv: list[str] | None = None) -> QApplication:
    """The one QApplication (reused when it exists, e.g. under pytest-qt)."""
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance()
    if app is None:
        check_display()
        app = QApplication(argv if argv is not None else sys.argv[:1])
    from app.resources import app_icon

    app.setWindowIcon(app_icon())
    app.setDesktopFileName("org.losslab.LossLab")  # matches packaging/linux/org.losslab.LossLab.desktop
    return app


def run_gui(files: Sequence[str | Path] = (), screenshot: str | Path | None = None,
            size: tuple[int, int] = (1400, 900)) -> int:
    """Open the window with ``files`` (runs, surfaces, experiments, workspace projects); with
    ``screenshot`` save the whole window and return. Several runs and surfaces fill the workspace."""
    files = [files] if isinstance(files, str | Path) else list(files)
    for file in files:
        if not Path(file).is_file():
            raise LossLabError(f"'{file}': file not found")
    app = create_application()
    from app.main_window import MainWindow

    window = MainWindow(restore_layout=screenshot is None)
    if screenshot is None:
        window.show()
        for file in files:
            window.open_file(file)  # a bad file gets an error dialog; the window stays open
        return app.exec()
    try:
        window.resize(*size)
        window.show()
        for file in files:
            window.open_file(file, interactive=False)  # scripts get the error and exit code 2
        if len(files) > 1:
            window.workspace.show_tab()
        out = window.save_window_picture(screenshot)
    finally:
        window.close()  # also stops the worker thread
    print(f"screenshot: {out}")
    return 0
