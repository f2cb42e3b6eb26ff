"""A slider paired with a number box: drag for a quick look, type for an exact value."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSlider, QWidget

STEPS = 1000


class SliderBox(QWidget):
    """A float in [low, high]; ``geometric`` spaces the slider logarithmically (needs low > 0)."""

    valueChanged = Signal(float)  # noqa: N815 (Qt naming, like the widgets it wraps)

    def __init__(self, low: float, high: float, value: float, decimals: int = 3,
                 geometric: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.box = QDoubleSpinBox()
        self.box.setDecimals(decimals)
        self.box.setKeyboardTracking(False)  # emit on Enter / focus out, not on every keystroke
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.box)
        self.slider.valueChanged.connect(self._slid)
        self.box.valueChanged.connect(self._typed)
        self.set_range(low, high, geometric)
        self.set_value(value)

    def set_range(self, low: float, high: float, geometric: bool = False) -> None:
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            low, high = (low, low + 1.0) if math.isfinite(low) else (0.0, 1.0)
        self._low, self._high = low, high
        self._geometric = geometric and low > 0
        self.box.blockSignals(True)
        self.box.setRange(low, high)
        self.box.setSingleStep((high - low) / 100)
        self.box.blockSignals(False)
        self._sync_slider(self.box.value())

    def value(self) -> float:
        return self.box.value()

    def set_value(self, value: float) -> None:
        """Set without emitting (used when settings are loaded into the form)."""
        self.box.blockSignals(True)
        self.box.setValue(value)
        self.box.blockSignals(False)
        self._sync_slider(self.box.value())

    def _to_slider(self, value: float) -> int:
        if self._geometric:
            fraction = math.log(value / self._low) / math.log(self._high / self._low)
        else:
            fraction = (value - self._low) / (self._high - self._low)
        return round(min(max(fraction, 0.0), 1.0) * STEPS)

    def _from_slider(self, position: int) -> float:
        fraction = position / STEPS
        if self._geometric:
            return self._low * (self._high / self._low) ** fraction
        return self._low + fraction * (self._high - self._low)

    def _sync_slider(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_slider(value))
        self.slider.blockSignals(False)

    def _slid(self, position: int) -> None:
        self.box.blockSignals(True)
        self.box.setValue(self._from_slider(position))
        self.box.blockSignals(False)
        self.valueChanged.emit(self.box.value())

    def _typed(self, value: float) -> None:
        self._sync_slider(value)
        self.valueChanged.emit(value)
