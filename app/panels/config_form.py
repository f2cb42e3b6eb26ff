"""A form built from a config dataclass: one editor per field, chosen from its type and metadata.

choices -> combo box, bool -> check box, int with range -> spin box, float -> text typed
freely (so "1e-3" works and a bad value can be shown with its reason), list[int] -> "64, 64".
Each row has a red line under the editor where the reason of a rejected value appears.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QWidget

from app.panels.field_editors import BoolEditor, ChoiceEditor, IntEditor, TextEditor
from engine.errors import ConfigError

# Words a user would use, where the field name alone is terse.
LABELS = {
    "lr": "Learning rate",
    "taaf": "TAAF activations",
    "hidden": "MLP hidden layers",
    "skip": "Skip connections",
    "class": "Class",
    "root": "Folder / file",
    "arch": "Architecture",
    "user": "Model file",
    "user_kwargs": "Model arguments",
    "kind": "Kind",
    "normalize": "Normalisation",
    "train_limit": "Train samples (0 = all)",
    "test_limit": "Test samples (0 = all)",
    "strength": "Distance strength",
    "start_epoch": "Start epoch",
    "every": "Snapshot every",
    "x": "x (α) grid",
    "y": "y (β) grid",
    "to": "Interpolate to",
    "via": "Via (2D plane)",
    "candidates": "K candidates",
    "norm": "Normalisation",
    "ignore": "Leave out",
    "dir_type": "Direction type",
    "subset": "Subset (0 = all)",
    "average": "Average over",
    "bn_train_mode": "BN batch statistics",
}
CHOICE_LABELS = {
    "user": "user — runs code from the file",
    "ce": "cross-entropy",
    "mse": "MSE (softmax vs one-hot)",
    "mae": "MAE",
    "warm_restarts": "cosine, warm restarts",
    "sharesnet20": "ShaResNet-20",
    "mobilenetv2": "MobileNetV2",
}
ERROR_STYLE = "color: #c62828;"


def rejection(error: ConfigError) -> str:
    """The reason shown under a field: what was found and what is allowed."""
    found = "(empty)" if error.value in (None, "") else repr(error.value)
    return f"{found} is not valid; expected {error.allowed}"


def field_label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def editor_for(key: str, tp: Any, meta: typing.Mapping) -> QWidget:
    """The default editor for one field, from its type and validation metadata."""
    if "choices" in meta:
        return ChoiceEditor(tuple(meta["choices"]), CHOICE_LABELS)
    if tp is bool:
        return BoolEditor()
    if tp is int:
        return IntEditor(meta.get("min"), meta.get("max"))
    if tp is float:
        return TextEditor(key, "float")
    origin = typing.get_origin(tp)
    if origin is list:
        return TextEditor(key, "int_list")
    if origin is dict:
        return TextEditor(key, "table")
    editor = TextEditor(key)
    editor.setPlaceholderText(meta.get("help", ""))
    return editor


def _range_hint(meta: typing.Mapping) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return ""
    return f"allowed: {'-∞' if lo is None else f'{lo:g}'} … {'∞' if hi is None else f'{hi:g}'}"


@dataclasses.dataclass
class FieldRow:
    key: str  # dotted TOML key, e.g. "bias.class"
    label: QLabel
    editor: QWidget
    error: QLabel

    def show_error(self, reason: str) -> None:
        self.error.setText(reason)
        self.error.setVisible(bool(reason))


class SectionForm(QGroupBox):
    """Editors for the fields of one config section; ``edited`` fires on any finished change."""

    edited = Signal()

    def __init__(self, title: str, section: type, prefix: str,
                 custom: dict[str, QWidget] | None = None, skip: tuple[str, ...] = ()) -> None:
        super().__init__(title)
        self.section, self.prefix = section, prefix
        self.rows: dict[str, FieldRow] = {}
        self._grid = QGridLayout(self)
        self._grid.setColumnStretch(1, 1)
        hints = typing.get_type_hints(section)
        for f in dataclasses.fields(section):
            tp = hints[f.name]
            name = f.metadata.get("toml_key", f.name)
            if dataclasses.is_dataclass(tp) or name in skip:
                continue
            editor = (custom or {}).get(name) or editor_for(prefix + name, tp, f.metadata)
            self._add_row(name, editor, f.metadata)

    def _add_row(self, name: str, editor: QWidget, meta: typing.Mapping) -> None:
        label = QLabel(field_label(name))
        tip = "\n".join(t for t in (meta.get("help", ""), _range_hint(meta)) if t)
        label.setToolTip(tip)
        editor.setToolTip(tip)
        error = QLabel()
        error.setStyleSheet(ERROR_STYLE)
        error.setWordWrap(True)
        error.setVisible(False)
        error.setObjectName(f"error:{self.prefix}{name}")
        editor.setObjectName(f"field:{self.prefix}{name}")
        row = 2 * len(self.rows)
        self._grid.addWidget(label, row, 0)
        self._grid.addWidget(editor, row, 1)
        self._grid.addWidget(error, row + 1, 0, 1, 2)
        editor.edited.connect(self.edited.emit)
        self.rows[name] = FieldRow(self.prefix + name, label, editor, error)

    def values(self) -> dict[str, Any]:
        """The form as a TOML-shaped dict (raises FieldParseError for untypeable text)."""
        return {name: row.editor.value() for name, row in self.rows.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            row = self.rows.get(name)
            if row is not None:
                row.editor.blockSignals(True)
                row.editor.set_value(value)
                row.editor.blockSignals(False)

    def set_row_visible(self, name: str, visible: bool) -> None:
        row = self.rows[name]
        for widget in (row.label, row.editor):
            widget.setVisible(visible)
        row.error.setVisible(visible and bool(row.error.text()))
