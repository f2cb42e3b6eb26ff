"""Editors for the connect options, one per declared field of :class:`engine.connect.ConnectOptions`.

Widget kind, range, choices, label and tooltip all come from the declaration (engine.schema), so
nothing here repeats a rule; the instance built by :meth:`ConnectOptionsForm.options` is validated
by the declaration too, and its error is shown under the form naming the field.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from app.panels.field_editors import PathEditor
from engine.connect import ConnectOptions
from engine.errors import ConfigError
from engine.schema import Setting, settings_of

SHOWN = ("curve", "bends", "epochs", "lr", "batch_size", "checkpoint_a", "checkpoint_b", "t", "bn_update",
         "ensemble", "seed")


def _editor(s: Setting) -> QWidget:
    default, meta = s.default(), s.meta
    if s.choices:
        box = QComboBox()
        box.addItems([str(c) for c in s.choices])
        box.setCurrentText(str(default))
        return box
    if s.base is bool:
        check = QCheckBox()
        check.setChecked(bool(default))
        return check
    if s.base is int:
        spin = QSpinBox()
        spin.setRange(int(meta.get("min", 0)), int(meta.get("max", 1_000_000)))
        spin.setValue(int(default))
        return spin
    if s.base is float:
        spin = QDoubleSpinBox()
        spin.setDecimals(5)
        spin.setRange(float(meta.get("min", 0.0)), float(meta.get("max", 1e6)))
        spin.setSingleStep(0.01)
        spin.setValue(float(default))
        return spin
    return QLineEdit(str(default))


def _value(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    return widget.text().strip()


class ConnectOptionsForm(QWidget):
    """The curve's options; :meth:`options` returns them validated or shows why not."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        self.editors: dict[str, QWidget] = {}
        for s in settings_of(ConnectOptions):
            if s.name not in SHOWN:
                continue
            editor = _editor(s)
            editor.setObjectName(f"setting:{s.name}")
            editor.setToolTip(s.help)
            label = s.meta.get("label") or s.name.replace("_", " ").capitalize()
            layout.addRow(label, editor)
            self.editors[s.name] = editor
        self.error = QLabel()
        self.error.setObjectName("connect_options_error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")
        layout.addRow(self.error)

    def set_value(self, name: str, value: Any) -> None:
        widget = self.editors[name]
        if isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setValue(value)
        else:
            widget.setText(str(value))

    def options(self) -> ConnectOptions | None:
        """The options shown, validated; None (and the reason under the form) if one is not allowed."""
        try:
            options = ConnectOptions(**{name: _value(w) for name, w in self.editors.items()})
        except ConfigError as exc:
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
