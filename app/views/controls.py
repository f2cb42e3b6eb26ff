"""The display-controls panel: a form over :class:`DisplaySettings` for every surface view.

It knows nothing about the views: it emits :attr:`DisplayControls.changed` with a validated
settings object, and :attr:`DisplayControls.camera_requested` with a preset name.
``controls.connect_view(view)`` wires both to any view with ``apply_settings``/``set_camera``.
"""

from __future__ import annotations

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

from app.display import COLORMAPS, DisplaySettings, field_help, parse_levels
from app.display_data import SurfaceLike
from app.views.slider_box import SliderBox
from engine.errors import ConfigError, LossLabError

CAMERA_BUTTONS = (("top", "fa5s.arrow-down", "Look straight down (map view)"),
                  ("iso", "fa5s.cube", "Oblique view from a corner"),
                  ("front", "fa5s.eye", "Side view along β"),
                  ("reset", "fa5s.undo", "Reset the camera"))
DEBOUNCE_MS = 60  # sliders fire on every pixel; the views redraw once the hand pauses


class DisplayControls(QWidget):
    """Edits display settings; validation errors are shown in the panel, never emitted."""

    changed = Signal(object)
    camera_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None, settings: DisplaySettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings or DisplaySettings()
        self._ranges: dict[str, tuple[float, float]] = {}
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit)
        layout = QVBoxLayout(self)
        for box in (self._data_group(), self._look_group(), self._light_group(), self._contour_group(),
                    self._camera_row()):
            layout.addWidget(box)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.set_settings(self._settings, emit=False)
        self._connect_inputs()

    # ---- building -----------------------------------------------------------------
    def _check(self, text: str, name: str) -> QCheckBox:
        box = QCheckBox(text)
        box.setToolTip(field_help(name))
        return box

    def _data_group(self) -> QGroupBox:
        group, form = QGroupBox("Data"), QFormLayout()
        # Not "self.metric": that name would shadow QWidget.metric(), which Qt calls while painting.
        self.metric_box = QComboBox()
        self.metric_box.setToolTip(field_help("metric"))
        self.log_scale = self._check("Log scale (log10)", "log_scale")
        self.clamp_on = self._check("Clamp above", "clamp_max")
        self.clamp = SliderBox(0.0, 1.0, 1.0, decimals=4)
        self.fill_holes = self._check("Fill pending points (display only)", "fill_holes")
        self.mark_uncomputed = self._check("Mark pending points", "mark_uncomputed")
        self.show_trajectory = self._check("Show trajectory", "show_trajectory")
        form.addRow("Metric", self.metric_box)
        form.addRow(self.log_scale)
        form.addRow(self.clamp_on, self.clamp)
        for box in (self.fill_holes, self.mark_uncomputed, self.show_trajectory):
            form.addRow(box)
        group.setLayout(form)
        return group

    def _look_group(self) -> QGroupBox:
        group, form = QGroupBox("Height and colour"), QFormLayout()
        self.z_scale = SliderBox(0.1, 10.0, 1.0, decimals=2, geometric=True)
        self.z_scale.setToolTip(field_help("z_scale"))
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.range_on = self._check("Fixed colour range", "color_range")
        self.range_low, self.range_high = QDoubleSpinBox(), QDoubleSpinBox()
        row = QHBoxLayout()
        for box in (self.range_low, self.range_high):
            box.setRange(-1e9, 1e9)
            box.setDecimals(4)
            box.setKeyboardTracking(False)
            box.setMinimumWidth(70)  # its size hint fits "-1000000000.0000": far too wide for a dock
            row.addWidget(box)
        self.scalar_bar = self._check("Colour bar", "show_scalar_bar")
        form.addRow("Z scale", self.z_scale)
        form.addRow("Colour map", self.colormap)
        form.addRow(self.range_on, row)
        form.addRow(self.scalar_bar)
        group.setLayout(form)
        return group

    def _light_group(self) -> QGroupBox:
        group, form = QGroupBox("Lighting"), QFormLayout()
        self.light_kit = self._check("Light kit", "light_kit")
        self.smooth = self._check("Smooth shading", "smooth_shading")
        self.specular = SliderBox(0.0, 1.0, 0.3, decimals=2)
        self.pbr = self._check("Physically based (PBR)", "pbr")
        self.metallic = SliderBox(0.0, 1.0, 0.2, decimals=2)
        self.roughness = SliderBox(0.0, 1.0, 0.45, decimals=2)
        self.edl = self._check("Eye-dome lighting", "eye_dome_lighting")
        form.addRow(self.light_kit)
        form.addRow(self.smooth)
        form.addRow("Specular", self.specular)
        form.addRow(self.pbr)
        form.addRow("Metallic", self.metallic)
        form.addRow("Roughness", self.roughness)
        form.addRow(self.edl)
        group.setLayout(form)
        return group

    def _contour_group(self) -> QGroupBox:
        group, form = QGroupBox("Contours"), QFormLayout()
        self.contour_count = QSpinBox()
        self.contour_count.setRange(0, 100)
        self.contour_count.setToolTip(field_help("contour_count"))
        self.levels = QLineEdit()
        self.levels.setPlaceholderText("e.g. 0.5, 1, 2 (metric units)")
        self.levels.setToolTip(field_help("contour_levels"))
        self.levels_error = QLabel()
        self.levels_error.setStyleSheet("color: #b00020")
        self.on_surface = self._check("On the surface", "contours_on_surface")
        self.below = self._check("Projected below", "contours_below")
        form.addRow("Levels (count)", self.contour_count)
        form.addRow("Levels (values)", self.levels)
        form.addRow("", self.levels_error)
        form.addRow(self.on_surface)
        form.addRow(self.below)
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
        for box in (self.log_scale, self.clamp_on, self.fill_holes, self.mark_uncomputed, self.range_on,
                    self.show_trajectory, self.scalar_bar, self.light_kit, self.smooth, self.pbr, self.edl,
                    self.on_surface, self.below):
            box.toggled.connect(self._schedule)
        for combo in (self.metric_box, self.colormap):
            combo.currentIndexChanged.connect(self._schedule)
        for slider in (self.clamp, self.z_scale, self.specular, self.metallic, self.roughness):
            slider.valueChanged.connect(self._schedule)
        for spin in (self.range_low, self.range_high, self.contour_count):
            spin.valueChanged.connect(self._schedule)
        self.levels.editingFinished.connect(self._schedule)
        self.metric_box.currentIndexChanged.connect(self._metric_changed)
        self.log_scale.toggled.connect(self._metric_changed)
        for box in (self.pbr, self.clamp_on, self.range_on):
            box.toggled.connect(self._enable_dependents)

    def _enable_dependents(self) -> None:
        """Grey out inputs that the current choices ignore."""
        pbr = self.pbr.isChecked()
        self.metallic.setEnabled(pbr)
        self.roughness.setEnabled(pbr)
        self.specular.setEnabled(not pbr)
        self.clamp.setEnabled(self.clamp_on.isChecked())
        for box in (self.range_low, self.range_high):
            box.setEnabled(self.range_on.isChecked())

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
            self._load(settings)
        finally:
            for w, was in zip(widgets, blocked):
                w.blockSignals(was)
        self._enable_dependents()
        if emit:
            self.changed.emit(settings)

    def connect_view(self, view: QWidget) -> None:
        """Send settings and camera requests to ``view`` (3D, heatmap, curve or comparison)."""
        self.changed.connect(view.apply_settings)
        if hasattr(view, "set_camera"):
            self.camera_requested.connect(view.set_camera)

    # ---- internals ----------------------------------------------------------------
    def _load(self, s: DisplaySettings) -> None:
        index = self.metric_box.findData(s.metric)
        if index < 0 and s.metric:
            self.metric_box.addItem(s.metric, s.metric)
            index = self.metric_box.count() - 1
        self.metric_box.setCurrentIndex(max(index, 0))
        self.log_scale.setChecked(s.log_scale)
        self.clamp_on.setChecked(s.clamp_max is not None)
        if s.clamp_max is not None:
            self.clamp.set_value(s.clamp_max)
        self.z_scale.set_value(s.z_scale)
        self.colormap.setCurrentText(s.colormap)
        self.range_on.setChecked(s.color_range is not None)
        if s.color_range is not None:
            self.range_low.setValue(s.color_range[0])
            self.range_high.setValue(s.color_range[1])
        for box, on in ((self.fill_holes, s.fill_holes), (self.mark_uncomputed, s.mark_uncomputed),
                        (self.show_trajectory, s.show_trajectory), (self.scalar_bar, s.show_scalar_bar),
                        (self.light_kit, s.light_kit), (self.smooth, s.smooth_shading), (self.pbr, s.pbr),
                        (self.edl, s.eye_dome_lighting), (self.on_surface, s.contours_on_surface),
                        (self.below, s.contours_below)):
            box.setChecked(on)
        self.specular.set_value(s.specular)
        self.metallic.set_value(s.metallic)
        self.roughness.set_value(s.roughness)
        self.contour_count.setValue(s.contour_count)
        self.levels.setText(", ".join(f"{v:g}" for v in s.contour_levels))

    def _metric_changed(self) -> None:
        name = self.metric_box.currentData() or next((n for n in self._ranges if "loss" in n), "")
        low, high = self._ranges.get(name, (0.0, 1.0))
        self.clamp.set_range(low, high, geometric=self.log_scale.isChecked())
        if not self.clamp_on.isChecked():
            self.clamp.set_value(high)

    def _schedule(self) -> None:
        self._timer.start()

    def _emit(self) -> None:
        try:
            levels = parse_levels(self.levels.text())
            self.levels_error.setText("")
        except ConfigError as err:
            self.levels_error.setText(f"'{err.value}' is not a number")
            return
        try:
            settings = self._collect(levels)
        except LossLabError as err:
            self.error.setText(str(err))
            return
        self.error.setText("")
        self._settings = settings
        self.changed.emit(settings)

    def _collect(self, levels: tuple[float, ...]) -> DisplaySettings:
        on = QCheckBox.isChecked
        return DisplaySettings(
            metric=self.metric_box.currentData() or "", log_scale=on(self.log_scale),
            clamp_max=self.clamp.value() if on(self.clamp_on) else None, z_scale=self.z_scale.value(),
            colormap=self.colormap.currentText(),
            color_range=(self.range_low.value(), self.range_high.value()) if on(self.range_on) else None,
            light_kit=on(self.light_kit), specular=self.specular.value(), smooth_shading=on(self.smooth),
            pbr=on(self.pbr), metallic=self.metallic.value(), roughness=self.roughness.value(),
            eye_dome_lighting=on(self.edl), contour_count=self.contour_count.value(), contour_levels=levels,
            contours_on_surface=on(self.on_surface), contours_below=on(self.below),
            show_trajectory=on(self.show_trajectory), fill_holes=on(self.fill_holes),
            mark_uncomputed=on(self.mark_uncomputed), show_scalar_bar=on(self.scalar_bar),
        )


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
