"""What the app remembers between sessions: window layout, recent files, last folder.

Everything goes through one QSettings object. By default that is the platform's
native store under organisation "LossLab"; tests (or a portable install) point it at
an .ini file with ``LOSSLAB_SETTINGS=/path/to/file.ini`` or ``AppSettings(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

ORGANISATION = "LossLab"
APPLICATION = "LossLab"
MAX_RECENT = 10
SETTINGS_ENV = "LOSSLAB_SETTINGS"


class AppSettings:
    """Typed access to the few values LossLab keeps in QSettings."""

    def __init__(self, path: str | Path | None = None) -> None:
        path = path or os.environ.get(SETTINGS_ENV)
        if path:
            self._qs = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(ORGANISATION, APPLICATION)

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def recent_files(self) -> list[str]:
        """Most recent first; files that no longer exist are dropped."""
        value = self._qs.value("recent_files", [])
        if isinstance(value, str):  # QSettings collapses a one-item list to a string
            value = [value]
        return [p for p in (value or []) if Path(p).exists()][:MAX_RECENT]

    def add_recent_file(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        self._qs.setValue("recent_files", files[:MAX_RECENT])
        self._qs.sync()
        return files[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        self._qs.setValue("recent_files", [])
        self._qs.sync()

    def last_folder(self) -> str:
        return str(self._qs.value("last_folder", str(Path.cwd())))

    def set_last_folder(self, path: str | Path) -> None:
        path = Path(path)
        self._qs.setValue("last_folder", str(path if path.is_dir() else path.parent))

    def runs_folder(self) -> str:
        """Where new run and surface files go (default ~/LossLab/runs)."""
        return str(self._qs.value("runs_folder", str(Path.home() / "LossLab" / "runs")))

    def set_runs_folder(self, path: str | Path) -> None:
        self._qs.setValue("runs_folder", str(path))

    def save_window(self, window: QMainWindow) -> None:
        self._qs.setValue("window/geometry", window.saveGeometry())
        self._qs.setValue("window/state", window.saveState())
        self._qs.sync()

    def restore_window(self, window: QMainWindow) -> bool:
        """Restore geometry and dock layout; False when nothing was stored yet."""
        geometry = self._qs.value("window/geometry")
        state = self._qs.value("window/state")
        if not isinstance(geometry, QByteArray) or not isinstance(state, QByteArray):
            return False
        return window.restoreGeometry(geometry) and window.restoreState(state)
