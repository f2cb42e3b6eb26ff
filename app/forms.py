"""Qt forms generated from settings declarations (engine.schema).

Two ways to put a settings type on screen, both reading the one declaration:

- :func:`editor_for` makes the default editor of a field (choices -> combo box, bool -> check
  box, int -> spin box, float -> free text, lists -> "64, 64", tables -> inline TOML); the
  section forms in ``app.panels.config_form`` lay those out with labels, tooltips and errors.
- :class:`SettingsBinding` connects hand-placed widgets to fields by object name
  (``setting:<name>``, and ``setting:<name>:on`` for the check box that switches an optional
  field between a value and None), like glue's autoconnect; fields without a placed widget get a
  generated editor, so a field added to the declaration always appears.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QLineEdit,
    QWidget,
)

from app.panels.field_editors import BoolEditor, ChoiceEditor, IntEditor, TextEditor
from engine.errors import LossLabError
from engine.schema import Setting, settings_of

# Words for choice values, where the value itself is terse.
CHOICE_LABELS = {
    "user": "user — runs code from the file",
    "ce": "cross-entropy",
    "mse": "MSE (softmax vs one-hot)",
    "mae": "MAE",
    "warm_restarts": "cosine, warm restarts",
    "sharesnet20": "ShaResNet-20",
    "mobilenetv2": "MobileNetV2",
}


def field_label(s: Setting) -> str:
    return s.meta.get("label") or s.key.replace("_", " ").capitalize()


def tooltip(s: Setting) -> str:
    lo, hi = s.meta.get("min"), s.meta.get("max")
    allowed = "" if lo is None and hi is None else \
        f"allowed: {'-∞' if lo is None else f'{lo:g}'} … {'∞' if hi is None else f'{hi:g}'}"
    applies = f"applies when {s.applies.text}" if s.applies is not None else ""
    return "\n".join(t for t in (s.help, allowed, applies) if t)


def editor_for(s: Setting, key: str) -> QWidget:
    """The default editor for one declared field; it has ``edited``, ``value()`` and ``set_value()``."""
    tp, origin = s.base, typing.get_origin(s.base)
    if s.choices is not None:
        none = (None,) if s.optional else ()  # an optional choice offers "(default)" = None
        return ChoiceEditor(none + s.choices, CHOICE_LABELS | {None: "(default)"})
    if tp is bool:
        return BoolEditor()
    if tp is int:
        return IntEditor(s.meta.get("min"), s.meta.get("max"))
    if tp is float:
        return TextEditor(key, "float", optional=s.optional)
    if origin in (list, tuple):
        return TextEditor(key, "int_list" if typing.get_args(tp)[0] is int else "float_list", optional=s.optional)
    if origin is dict:
        return TextEditor(key, "table")
    editor = TextEditor(key, "str", optional=s.optional)
    editor.setPlaceholderText(s.help)
    return editor


# ---- binding hand-placed widgets by name ---------------------------------------------------------
CHANGE_SIGNALS = ("edited", "valueChanged", "toggled", "currentIndexChanged", "editingFinished")


def read_widget(widget: QWidget) -> Any:
    if hasattr(widget, "value") and not isinstance(widget, QAbstractSpinBox | QComboBox):
        return widget.value()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        data = widget.currentData()
        return widget.currentText() if data is None else data
    if isinstance(widget, QLineEdit):
        return widget.text()
    return widget.value()


def write_widget(widget: QWidget, value: Any) -> None:
    if hasattr(widget, "set_value"):
        widget.set_value(value)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QComboBox):
        index = widget.findData(value)
        if index < 0:
            index = widget.findText(str(value))
        if index < 0:  # a value the list lacks: show it, so validation can name it
            widget.addItem(str(value), value)
            index = widget.count() - 1
        widget.setCurrentIndex(index)
    elif isinstance(widget, QLineEdit):
        widget.setText(str(value))
    else:
        widget.setValue(value)


def change_signal(widget: QWidget) -> Any:
    return next(getattr(widget, name) for name in CHANGE_SIGNALS if hasattr(widget, name))


class SettingsBinding:
    """Widgets under ``root`` bound to the fields of ``cls`` by their object names."""

    def __init__(self, root: QWidget, cls: type) -> None:
        self.cls = cls
        self.settings = [s for s in settings_of(cls) if not s.is_section]
        self.widgets: dict[str, QWidget] = {}
        self.toggles: dict[str, QCheckBox] = {}
        self.rebind(root)

    def rebind(self, root: QWidget) -> None:
        named = {w.objectName(): w for w in root.findChildren(QWidget) if w.objectName().startswith("setting:")}
        for s in self.settings:
            if f"setting:{s.name}" in named:
                self.widgets[s.name] = named[f"setting:{s.name}"]
            if f"setting:{s.name}:on" in named:
                self.toggles[s.name] = named[f"setting:{s.name}:on"]

    def unbound(self) -> list[Setting]:
        """Declared fields no widget shows yet (e.g. just added to the declaration)."""
        return [s for s in self.settings if s.name not in self.widgets]

    def add_editor(self, s: Setting) -> QWidget:
        """A generated editor for ``s``, bound; the caller places it in a layout."""
        editor = editor_for(s, s.name)
        editor.setObjectName(f"setting:{s.name}")
        editor.setToolTip(tooltip(s))
        self.widgets[s.name] = editor
        return editor

    def values(self) -> dict[str, Any]:
        """The widgets' values by field name (raises the editors' parse errors)."""
        out = {}
        for name, widget in self.widgets.items():
            toggle = self.toggles.get(name)
            out[name] = read_widget(widget) if toggle is None or toggle.isChecked() else None
        return out

    def build(self) -> Any:
        """A validated instance (ConfigError names the field)."""
        return self.cls(**self.values())

    def load(self, obj: Any) -> None:
        for name, widget in self.widgets.items():
            value = getattr(obj, name)
            toggle = self.toggles.get(name)
            if toggle is not None:
                toggle.setChecked(value is not None)
            if value is not None:
                write_widget(widget, value)

    def connect(self, callback: Callable[[], None]) -> None:
        for widget in (*self.widgets.values(), *self.toggles.values()):
            change_signal(widget).connect(lambda *_args: callback())

    def apply_rules(self) -> None:
        """Enable each widget only where its field applies (and its on/off box is on)."""
        values = self.values_for_rules()
        for s in self.settings:
            widget = self.widgets.get(s.name)
            if widget is None:
                continue
            toggle = self.toggles.get(s.name)
            applies = s.applies is None or s.applies(values)
            if toggle is not None:
                toggle.setEnabled(applies)
            widget.setEnabled(applies and (toggle is None or toggle.isChecked()))

    def values_for_rules(self) -> dict[str, Any]:
        out = {}
        for name, widget in self.widgets.items():
            try:
                toggle = self.toggles.get(name)
                out[name] = read_widget(widget) if toggle is None or toggle.isChecked() else None
            except (ValueError, LossLabError):  # text being typed; rules only read simple fields
                out[name] = None
        return out
