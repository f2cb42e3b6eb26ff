"""Editors for surface options: a grid axis (range + resolution), a checkpoint, another run."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QSpinBox, QWidget

from app.panels.field_editors import FieldParseError, PathEditor


class AxisEditor(QWidget):
    """``from [-1] to [1] in [51] points``; an optional axis has a check box (off = None)."""

    edited = Signal()

    def __init__(self, key: str, optional: bool = False) -> None:
        super().__init__()
        self.key = key
        self.enabled = QCheckBox("2D") if optional else None
        self.low, self.high = QLineEdit("-1"), QLineEdit("1")
        self.points = QSpinBox()
        self.points.setRange(1, 1001)
        self.points.setValue(51)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if self.enabled is not None:
            layout.addWidget(self.enabled)
            self.enabled.toggled.connect(self._toggled)
        for widget, text in ((self.low, "from"), (self.high, "to"), (self.points, "points")):
            widget.setMaximumWidth(70)
            if text != "points":
                layout.addWidget(QLabel(text))
                layout.addWidget(widget)
                widget.editingFinished.connect(self.edited.emit)
        layout.addWidget(self.points)
        layout.addWidget(QLabel("points"))
        self.points.valueChanged.connect(lambda _v: self.edited.emit())

    def _toggled(self, on: bool) -> None:
        for widget in (self.low, self.high, self.points):
            widget.setEnabled(on)
        self.edited.emit()

    def value(self) -> str | None:
        if self.enabled is not None and not self.enabled.isChecked():
            return None
        for line in (self.low, self.high):
            try:
                float(line.text())
            except ValueError:
                raise FieldParseError(self.key, line.text(), "a number") from None
        return f"{self.low.text().strip()}:{self.high.text().strip()}:{self.points.value()}"

    def set_value(self, value: Any) -> None:
        if self.enabled is not None:
            self.enabled.setChecked(value is not None)
            self._toggled(value is not None)
        if value is None:
            return
        low, high, count = str(value).split(":")
        self.low.setText(low)
        self.high.setText(high)
        self.points.setValue(int(count))


class CheckpointEditor(QComboBox):
    """A stored epoch of the chosen run, or "final"."""

    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.set_epochs([])
        self.currentIndexChanged.connect(lambda _i: self.edited.emit())

    def set_epochs(self, epochs: list[int]) -> None:
        keep = self.value() if self.count() else "final"
        self.blockSignals(True)
        self.clear()
        self.addItem("final", "final")
        for epoch in reversed(epochs):
            self.addItem("initialisation (epoch 0)" if epoch == 0 else f"epoch {epoch}", epoch)
        self.blockSignals(False)
        self.set_value(keep)

    def value(self) -> int | str:
        data = self.currentData()
        return "final" if data is None else data

    def set_value(self, value: Any) -> None:
        self.setCurrentIndex(max(self.findData(value), 0))


class RunReferenceEditor(QWidget):
    """Another run file and its checkpoint, as ``PATH:EPOCH`` (empty = None)."""

    edited = Signal()

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.path = PathEditor(key, "Choose the other run file")
        self.path.file_filter = "Run files (*.h5 *.hdf5)"
        self.epoch = QLineEdit("final")
        self.epoch.setMaximumWidth(60)
        self.epoch.setToolTip("epoch number or 'final'")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.path, 1)
        layout.addWidget(QLabel("epoch"))
        layout.addWidget(self.epoch)
        self.path.edited.connect(self.edited.emit)
        self.epoch.editingFinished.connect(self.edited.emit)

    def value(self) -> str | None:
        path, epoch = self.path.value(), self.epoch.text().strip() or "final"
        if not path:
            return None
        if not (epoch.isdigit() or epoch == "final"):
            raise FieldParseError(self.key, epoch, "an epoch number or 'final'")
        return f"{path}:{epoch}"

    def set_value(self, value: Any) -> None:
        from engine.landscape.options import parse_run_reference

        path, epoch = parse_run_reference(value) if value else ("", "final")
        self.path.set_value(path)
        self.epoch.setText(str(epoch))
