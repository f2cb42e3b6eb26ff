"""Forms built from a settings declaration (engine.schema): one editor per field.

The editor of each field comes from its type and rules (``app.forms.editor_for``); labels,
tooltips and "shown when" rules come from the declaration too. Each row has a red line under
the editor where the reason of a rejected value appears.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QWidget

from app.forms import editor_for, field_label, tooltip
from app.panels.field_editors import FieldParseError
from engine.errors import ConfigError
from engine.schema import Setting, settings_of

ERROR_STYLE = "color: #c62828;"


def rejection(error: ConfigError) -> str:
    """The reason shown under a field: what was found and what is allowed."""
    found = "(empty)" if error.value in (None, "") else repr(error.value)
    return f"{found} is not valid; expected {error.allowed}"


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
        self.declared: dict[str, Setting] = {}
        self._grid = QGridLayout(self)
        self._grid.setColumnStretch(1, 1)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop)  # spare height goes below the rows, not between
        for s in settings_of(section):
            if s.is_section or s.key in skip:
                continue
            editor = (custom or {}).get(s.key) or editor_for(s, prefix + s.key)
            self._add_row(s, editor)

    def _add_row(self, s: Setting, editor: QWidget) -> None:
        name = s.key
        label = QLabel(field_label(s))
        label.setToolTip(tooltip(s))
        editor.setToolTip(tooltip(s))
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
        self.declared[name] = s

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

    def apply_rules(self, values: dict[str, Any] | None = None) -> None:
        """Show only the rows whose declared "applies when" rule holds for ``values`` (by key)."""
        values = self.values_for_rules() if values is None else values
        for name, s in self.declared.items():
            if s.applies is not None:
                self.set_row_visible(name, s.applies(values))

    def values_for_rules(self) -> dict[str, Any]:
        """The form's values, with text that does not parse yet read as None."""
        out: dict[str, Any] = {}
        for name, row in self.rows.items():
            try:
                out[name] = row.editor.value()
            except FieldParseError:
                out[name] = None
        return out


class SettingsForm(SectionForm):
    """A whole settings type as one form: ``settings()`` builds and validates an instance."""

    def __init__(self, title: str, cls: type, custom: dict[str, QWidget] | None = None,
                 skip: tuple[str, ...] = ()) -> None:
        super().__init__(title, cls, "", custom, skip)
        self.set_settings(cls())

    def settings(self) -> Any:
        """The form as a validated instance (FieldParseError / ConfigError name the field)."""
        values = self.values()
        return self.section(**{s.name: values[key] for key, s in self.declared.items()})

    def set_settings(self, obj: Any) -> None:
        self.set_values({key: getattr(obj, s.name) for key, s in self.declared.items()})
        self.apply_rules()
