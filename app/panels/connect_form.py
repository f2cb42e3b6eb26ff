"""The connect options as a form, one editor per declared field of :class:`engine.connect.ConnectOptions`.

Editors, labels and tooltips come from the one options mechanism (``app.forms`` over
engine.schema), so nothing here repeats a rule; the instance :meth:`ConnectOptionsForm.options`
builds is validated by the declaration, and its error is shown under the form naming the field.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from app.forms import editor_for, field_label, read_widget, tooltip, write_widget
from app.panels.field_editors import FieldParseError, PathEditor
from engine.connect import ConnectOptions
from engine.errors import ConfigError
from engine.schema import settings_of

SHOWN = ("curve", "bends", "epochs", "lr", "batch_size", "checkpoint_a", "checkpoint_b", "t", "bn_update",
         "ensemble", "seed")


class ConnectOptionsForm(QWidget):
    """The curve's options; :meth:`options` returns them validated or shows why not."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        self.editors: dict[str, QWidget] = {}
        defaults = ConnectOptions()
        for s in settings_of(ConnectOptions):
            if s.name not in SHOWN:
                continue
            editor = editor_for(s, s.name)
            editor.setObjectName(f"setting:{s.name}")
            editor.setToolTip(tooltip(s))
            write_widget(editor, getattr(defaults, s.name))
            layout.addRow(field_label(s), editor)
            self.editors[s.name] = editor
        self.error = QLabel()
        self.error.setObjectName("connect_options_error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")
        layout.addRow(self.error)

    def set_value(self, name: str, value: Any) -> None:
        write_widget(self.editors[name], value)

    def options(self) -> ConnectOptions | None:
        """The options shown, validated; None (and the reason under the form) if one is not allowed."""
        try:
            options = ConnectOptions(**{name: read_widget(w) for name, w in self.editors.items()})
        except ConfigError as exc:
            self.error.setText(f"{exc.key}: {exc}")
            return None
        except FieldParseError as exc:
            self.error.setText(f"{exc.key}: {exc}")
            return None
        self.error.clear()
        return options


class CurveFileEditor(PathEditor):
    """The Surface panel's "Via curve": a curve file from Connect two runs (empty = none)."""

    def __init__(self) -> None:
        super().__init__("via_curve", "Choose a curve file written by Connect two runs")
        self.file_filter = "Curve files (*.h5 *.hdf5)"

    def value(self) -> str | None:
        return super().value() or None

    def set_value(self, value: Any) -> None:
        super().set_value(value or "")
