"""The display-controls panel: a form over :class:`DisplaySettings` for every surface view.

It knows nothing about the views: it emits :attr:`DisplayControls.changed` with a validated
settings object, and :attr:`DisplayControls.camera_requested` with a preset name.
``controls.connect_view(view)`` wires both to any view with ``apply_settings``/``set_camera``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import qtawesome as qta
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.display import COLORMAPS, DisplaySettings, parse_levels
from app.display_data import SurfaceLike
from app.forms import SettingsBinding, field_label, tooltip
from app.panels.config_form import rejection
from app.panels.field_editors import FieldParseError
from app.views.slider_box import SliderBox
from engine.errors import ConfigError
from engine.schema import setting_named

CAMERA_BUTTONS = (("top", "fa5s.arrow-down", "Look straight down (map view)"),
                  ("iso", "fa5s.cube", "Oblique view from a corner"),
                  ("front", "fa5s.eye", "Side view along β"),
                  ("reset", "fa5s.undo", "Reset the camera"))
DEBOUNCE_MS = 60  # sliders fire on every pixel; the views redraw once the hand pauses
ERROR_STYLE = "color: #b00020"


class RangeEditor(QWidget):
    """Two numbers (low, high) side by side."""

    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.low, self.high = QDoubleSpinBox(), QDoubleSpinBox()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for box in (self.low, self.high):
            box.setRange(-1e9, 1e9)
            box.setDecimals(4)
            box.setKeyboardTracking(False)
            box.setMinimumWidth(70)  # its size hint fits "-1000000000.0000": far too wide for a dock
            box.valueChanged.connect(lambda _v: self.edited.emit())
            row.addWidget(box)

    def value(self) -> tuple[float, float]:
        return (self.low.value(), self.high.value())

    def set_value(self, value: Any) -> None:
        self.low.setValue(value[0])
        self.high.setValue(value[1])


class LevelsEditor(QLineEdit):
    """Contour levels typed as '0.5, 1, 2' (metric units)."""

    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setPlaceholderText("e.g. 0.5, 1, 2 (metric units)")
        self.editingFinished.connect(self.edited.emit)

    def value(self) -> tuple[float, ...]:
        return parse_levels(self.text())

    def set_value(self, value: Any) -> None:
        self.setText(", ".join(f"{v:g}" for v in value))


class DisplayControls(QWidget):
    """Edits display settings; validation errors are shown in the panel, never emitted.

    Widgets are bound to DisplaySettings' fields by name (``app.forms.SettingsBinding``); a field
    that has no hand-placed widget gets a generated editor in the "More" group.
    """

    changed = Signal(object)
    camera_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings or DisplaySettings()
        self._ranges: dict[str, tuple[float, float]] = {}
        self.field_errors: dict[str, QLabel] = {}
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit)
        layout = QVBoxLayout(self)
        for box in (self._data_group(), self._look_group(), self._light_group(), self._contour_group()):
            layout.addWidget(box)
        self.binding = SettingsBinding(self, type(self._settings))  # a subclass adds fields: "More" shows them
        if self.binding.unbound():
            layout.addWidget(self._more_group())
        layout.addWidget(self._camera_row())
        self.error = QLabel()
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.levels_error = self.field_errors["contour_levels"]
        self.set_settings(self._settings, emit=False)
        self._connect_inputs()

    # ---- building -----------------------------------------------------------------
    def _bind(self, form: QFormLayout, name: str, widget: QWidget, toggle: QCheckBox | None = None) -> QWidget:
        """Place ``widget`` as the editor of field ``name`` (label, tooltip and error line from its declaration)."""
        s = setting_named(DisplaySettings, name)
        widget.setObjectName(f"setting:{name}")
        widget.setToolTip(tooltip(s))
        if isinstance(widget, QCheckBox):
            widget.setText(field_label(s))
            form.addRow(widget)
        elif toggle is not None:
            toggle.setObjectName(f"setting:{name}:on")
            toggle.setText(field_label(s))
            toggle.setToolTip(tooltip(s))
            form.addRow(toggle, widget)
        else:
            form.addRow(field_label(s), widget)
        error = QLabel()
        error.setStyleSheet(ERROR_STYLE)
        error.setWordWrap(True)
        error.setVisible(False)
        form.addRow(error)
        self.field_errors[name] = error
        return widget

    def _data_group(self) -> QGroupBox:
        group, form = QGroupBox("Data"), QFormLayout()
        # Not "self.metric": that name would shadow QWidget.metric(), which Qt calls while painting.
        self.metric_box = self._bind(form, "metric", QComboBox())
        self.metric_box.addItem("(first loss metric)", "")
        self.log_scale = self._bind(form, "log_scale", QCheckBox())
        self.clamp_on = QCheckBox()
        self.clamp = self._bind(form, "clamp_max", SliderBox(0.0, 1.0, 1.0, decimals=4), self.clamp_on)
        self.fill_holes = self._bind(form, "fill_holes", QCheckBox())
        self.mark_uncomputed = self._bind(form, "mark_uncomputed", QCheckBox())
        self.show_trajectory = self._bind(form, "show_trajectory", QCheckBox())
        group.setLayout(form)
        return group

    def _look_group(self) -> QGroupBox:
        group, form = QGroupBox("Height and colour"), QFormLayout()
        self.z_scale = self._bind(form, "z_scale", SliderBox(0.1, 10.0, 1.0, decimals=2, geometric=True))
        self.colormap = self._bind(form, "colormap", QComboBox())
        self.colormap.addItems(COLORMAPS)
        self.range_on = QCheckBox()
        self.color_range = self._bind(form, "color_range", RangeEditor(), self.range_on)
        self.range_low, self.range_high = self.color_range.low, self.color_range.high
        self.scalar_bar = self._bind(form, "show_scalar_bar", QCheckBox())
        group.setLayout(form)
        return group

    def _light_group(self) -> QGroupBox:
        group, form = QGroupBox("Lighting"), QFormLayout()
        self.light_kit = self._bind(form, "light_kit", QCheckBox())
        self.smooth = self._bind(form, "smooth_shading", QCheckBox())
        self.specular = self._bind(form, "specular", SliderBox(0.0, 1.0, 0.3, decimals=2))
        self.pbr = self._bind(form, "pbr", QCheckBox())
        self.metallic = self._bind(form, "metallic", SliderBox(0.0, 1.0, 0.2, decimals=2))
        self.roughness = self._bind(form, "roughness", SliderBox(0.0, 1.0, 0.45, decimals=2))
        self.edl = self._bind(form, "eye_dome_lighting", QCheckBox())
        group.setLayout(form)
        return group

    def _contour_group(self) -> QGroupBox:
        group, form = QGroupBox("Contours"), QFormLayout()
        self.contour_count = QSpinBox()
        self.contour_count.setRange(0, 100)
        self._bind(form, "contour_count", self.contour_count)
        self.levels = self._bind(form, "contour_levels", LevelsEditor())
        self.on_surface = self._bind(form, "contours_on_surface", QCheckBox())
        self.below = self._bind(form, "contours_below", QCheckBox())
        group.setLayout(form)
        return group

    def _more_group(self) -> QGroupBox:
        """Generated editors for declared fields that no hand-placed widget shows."""
        group, form = QGroupBox("More"), QFormLayout()
        for s in self.binding.unbound():
            editor = self.binding.add_editor(s)
            if isinstance(editor, QCheckBox):
                editor.setText(field_label(s))
                form.addRow(editor)
            else:
                form.addRow(field_label(s), editor)
            error = QLabel()
            error.setStyleSheet(ERROR_STYLE)
            error.setVisible(False)
            form.addRow(error)
            self.field_errors[s.name] = error
        group.setLayout(form)
        return group

    def _camera_row(self) -> QGroupBox:
        group, row = QGroupBox("Camera"), QHBoxLayout()
        self.camera_buttons: dict[str, QToolButton] = {}
        for preset, icon_name, tip in CAMERA_BUTTONS:
            button = QToolButton()
            button.setIcon(qta.icon(icon_name))
            button.setText(preset)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, p=preset: self.camera_requested.emit(p))
            row.addWidget(button)
            self.camera_buttons[preset] = button
        row.addStretch(1)
        group.setLayout(row)
        return group

    def _connect_inputs(self) -> None:
        self.binding.connect(self._schedule)
        self.binding.connect(self.binding.apply_rules)  # grey out what the current choices ignore
        self.metric_box.currentIndexChanged.connect(self._metric_changed)
        self.log_scale.toggled.connect(self._metric_changed)

    # ---- public API ---------------------------------------------------------------
    def settings(self) -> DisplaySettings:
        """The last valid settings (what the views show)."""
        return self._settings

    def set_surface(self, surface: SurfaceLike) -> None:
        """Offer ``surface``'s metrics and fit the clamp slider to each metric's computed values."""
        names = list(surface.values)
        self._ranges = {n: _finite_range(np.asarray(v, dtype=float)) for n, v in surface.values.items()}
        current = self._settings.metric
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        self.metric_box.addItem("(first loss metric)", "")
        for name in names:
            self.metric_box.addItem(name, name)
        self.metric_box.setCurrentIndex(max(0, self.metric_box.findData(current)))
        self.metric_box.blockSignals(False)
        self._metric_changed()

    def set_settings(self, settings: DisplaySettings, emit: bool = True) -> None:
        """Load ``settings`` into the form (e.g. restored from QSettings)."""
        self._settings = settings
        widgets = [self, *self.findChildren(QWidget)]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            self.binding.load(settings)
        finally:
            for w, was in zip(widgets, blocked):
                w.blockSignals(was)
        self.binding.apply_rules()
        if emit:
            self.changed.emit(settings)

    def connect_view(self, view: QWidget) -> None:
        """Send settings and camera requests to ``view`` (3D, heatmap, curve or comparison)."""
        self.changed.connect(view.apply_settings)
        if hasattr(view, "set_camera"):
            self.camera_requested.connect(view.set_camera)

    # ---- internals ----------------------------------------------------------------
    def _metric_changed(self) -> None:
        name = self.metric_box.currentData() or next((n for n in self._ranges if "loss" in n), "")
        low, high = self._ranges.get(name, (0.0, 1.0))
        self.clamp.set_range(low, high, geometric=self.log_scale.isChecked())
        if not self.clamp_on.isChecked():
            self.clamp.set_value(high)

    def _schedule(self) -> None:
        self._timer.start()

    def _emit(self) -> None:
        for label in (self.error, *self.field_errors.values()):
            label.setText("")
            label.setVisible(label is self.error)
        try:
            settings = self.binding.build()
        except FieldParseError as err:
            self._show_error(err.key, str(err))
            return
        except ConfigError as err:
            self._show_error(err.key, rejection(err))
            return
        self._settings = settings
        self.changed.emit(settings)

    def _show_error(self, key: str, reason: str) -> None:
        """The reason under the field it concerns (or at the bottom when no field is named)."""
        label = self.field_errors.get(key.split("[")[0])
        if label is None:
            self.error.setText(f"{key}: {reason}")
            return
        label.setText(f"{field_label(setting_named(self.binding.cls, key.split('[')[0]))}: {reason}")
        label.setVisible(True)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
