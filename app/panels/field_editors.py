"""One small editor widget per config field type, all with the same three-method face.

Every editor has ``edited`` (emitted when the user finished a change), ``value()`` (raises
:class:`FieldParseError` when the text is not even of the right type) and ``set_value()``.
Range and choice checks are not done here: the whole form goes through
``engine.config.from_dict`` so the app and the TOML files obey the same rules.
"""

from __future__ import annotations

import tomllib
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from app.resources import icon

INT_LIMIT = 2**31 - 1


class FieldParseError(ValueError):
    """The text in a field is not of the field's type (e.g. 'abc' for a number)."""

    def __init__(self, key: str, text: str, expected: str) -> None:
        super().__init__(f"{text!r} is not {expected}")
        self.key = key


class ChoiceEditor(QComboBox):
    edited = Signal()

    def __init__(self, choices: tuple[Any, ...], labels: dict[Any, str] | None = None) -> None:
        super().__init__()
        for choice in choices:
            self.addItem((labels or {}).get(choice, str(choice)), choice)
        self.currentIndexChanged.connect(lambda _i: self.edited.emit())

    def value(self) -> Any:
        return self.currentData()

    def set_value(self, value: Any) -> None:
        index = next((i for i in range(self.count()) if self.itemData(i) is None), -1) if value is None \
            else self.findData(value)
        if index < 0:  # a value from a file that is not a choice: show it so validation can name it
            self.addItem(str(value), value)
            index = self.count() - 1
        self.setCurrentIndex(index)


class BoolEditor(QCheckBox):
    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.toggled.connect(lambda _on: self.edited.emit())

    def value(self) -> bool:
        return self.isChecked()

    def set_value(self, value: Any) -> None:
        self.setChecked(bool(value))


class IntEditor(QSpinBox):
    edited = Signal()

    def __init__(self, lo: int | None, hi: int | None) -> None:
        super().__init__()
        self.setRange(-INT_LIMIT if lo is None else int(lo), INT_LIMIT if hi is None else int(hi))
        self.setAccelerated(True)
        self.valueChanged.connect(lambda _v: self.edited.emit())

    def set_value(self, value: Any) -> None:
        self.setValue(int(value))


class TextEditor(QLineEdit):
    """Free text, numbers, lists of numbers or inline TOML tables, parsed when read.

    ``optional``: empty text means None (a field declared ``X | None``).
    """

    edited = Signal()
    PLACEHOLDERS = {"int_list": "e.g. 64, 64", "float_list": "e.g. 0.5, 1, 2", "table": "e.g. {depth = 3}"}

    def __init__(self, key: str, kind: str = "str", optional: bool = False) -> None:
        super().__init__()
        self.key, self.kind, self.optional = key, kind, optional
        self.editingFinished.connect(self.edited.emit)
        if kind in self.PLACEHOLDERS:
            self.setPlaceholderText(self.PLACEHOLDERS[kind])
        elif optional:
            self.setPlaceholderText("(none)")

    def value(self) -> Any:
        text = self.text().strip()
        if self.optional and not text:
            return None
        if self.kind == "float":
            return self._parse(float, text, "a number")
        if self.kind in ("int_list", "float_list"):
            item, words = (int, "whole numbers") if self.kind == "int_list" else (float, "numbers")
            parts = [part for part in text.replace(";", ",").split(",") if part.strip()]
            return [self._parse(item, part, f"{words} separated by commas") for part in parts]
        if self.kind == "table":
            try:
                return tomllib.loads(f"v = {text or '{}'}")["v"]
            except tomllib.TOMLDecodeError:
                raise FieldParseError(self.key, text, "an inline TOML table like {depth = 3}") from None
        return self.text()

    def _parse(self, kind: type, text: str, expected: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise FieldParseError(self.key, self.text(), expected) from None

    def set_value(self, value: Any) -> None:
        if value is None:
            self.setText("")
        elif self.kind in ("int_list", "float_list"):
            self.setText(", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value))
        elif self.kind == "table":
            self.setText("{" + ", ".join(f"{k} = {v!r}" for k, v in dict(value).items()) + "}")
        elif self.kind == "float":
            self.setText(f"{float(value):g}")
        else:
            self.setText(str(value))


class PathEditor(QWidget):
    """A path typed in or chosen with a browse button: a folder or a file (``file_filter``)."""

    edited = Signal()

    def __init__(self, key: str, caption: str = "Choose") -> None:
        super().__init__()
        self.key, self.caption = key, caption
        self.file_filter = ""  # empty: pick a folder
        self.line = QLineEdit()
        self.line.editingFinished.connect(self.edited.emit)
        self.browse = QToolButton()
        self.browse.setIcon(icon("browse"))
        self.browse.setToolTip(caption)
        self.browse.clicked.connect(self._choose)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line)
        layout.addWidget(self.browse)

    def value(self) -> str:
        return self.line.text().strip()

    def set_value(self, value: Any) -> None:
        self.line.setText(str(value))

    def _choose(self) -> None:
        start = self.value()
        if self.file_filter:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.file_filter)
        else:
            path = QFileDialog.getExistingDirectory(self, self.caption, start)
        if path:
            self.set_value(path)
            self.edited.emit()


class ClassEditor(QComboBox):
    """A class chosen by its name; the stored value is its index (-1 = no class).

    The names come from the data set, which loads in the background: until then (or when a
    file names a class the data set lacks) the index is shown as "class N".
    """

    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.set_classes([])
        self.currentIndexChanged.connect(lambda _i: self.edited.emit())

    def set_classes(self, classes: list[str]) -> None:
        keep = self.value()
        self.blockSignals(True)
        self.clear()
        self.addItem("(no class)", -1)
        for i, name in enumerate(classes):
            self.addItem(f"{name}" if name == str(i) else f"{name}  [{i}]", i)
        self.set_value(keep)
        self.blockSignals(False)

    def value(self) -> int:
        data = self.currentData()
        return -1 if data is None else int(data)

    def set_value(self, value: Any) -> None:
        index = self.findData(int(value))
        if index < 0:
            self.addItem(f"class {int(value)}", int(value))
            index = self.count() - 1
        self.setCurrentIndex(index)
