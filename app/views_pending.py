"""TEMPORARY placeholders for views another helper is writing in app/views/ (to be replaced).

Each shows a clear label so nobody mistakes it for the real view.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.display import DisplaySettings


class _Pending(QWidget):
    def __init__(self, what: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"PLACEHOLDER: {what} is being written (app/views/)."))

    def set_surface(self, *_a: object) -> None:
        pass

    def update_values(self, *_a: object) -> None:
        pass

    def apply_settings(self, *_a: object) -> None:
        pass

    def set_camera(self, *_a: object) -> None:
        pass

    def set_surfaces(self, *_a: object) -> None:
        pass


class CurveArea(_Pending):
    def __init__(self) -> None:
        super().__init__("the 1D curve view")


class CompareArea(_Pending):
    def __init__(self) -> None:
        super().__init__("the comparison view")


class DisplayControlsArea(_Pending):
    settings_changed = Signal(object)

    def __init__(self, settings: DisplaySettings) -> None:
        super().__init__("the display controls")
        self.settings = settings
