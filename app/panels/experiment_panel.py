"""Experiment panel: presets, TOML load/save and forms for data, bias, model and recipe.

The forms are built from the config dataclasses. After every finished edit the whole
form goes through ``engine.config.from_dict``; a rejected value is shown in red under
its field and ``validity_changed(False)`` keeps Start disabled. A background data check
(which also gives the bias preview) must pass too: an empty CIFAR-10 folder is caught here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.panels.bias_preview import BiasPreview, DataCheck
from app.panels.config_form import ERROR_STYLE, SectionForm, rejection
from app.panels.field_editors import ClassEditor, FieldParseError, PathEditor
from app.resources import icon, load_preset, preset_files
from engine.config import (
    BiasConfig,
    DataConfig,
    DistanceConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    from_dict,
    load_experiment,
)
from engine.errors import ConfigError, LossLabError

TOML_FILTER = "Experiment (*.toml)"


class ExperimentPanel(QWidget):
    """Edits one ExperimentConfig; ``config()`` is valid whenever ``is_valid`` is True."""

    validity_changed = Signal(bool)
    config_changed = Signal(object)  # ExperimentConfig, after each valid edit
    file_loaded = Signal(str)  # a TOML path read or written (for recent files)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root_editor = PathEditor("data.root", "Choose the data folder or .npz file")
        self.class_editor = ClassEditor()
        self.forms = {
            "": SectionForm("Experiment", ExperimentConfig, ""),
            "data": SectionForm("Data", DataConfig, "data.", {"root": self.root_editor}),
            "bias": SectionForm("Bias (training split only)", BiasConfig, "bias.",
                                {"class": self.class_editor}),
            "model": SectionForm("Model", ModelConfig, "model."),
            "train": SectionForm("Training recipe", TrainConfig, "train."),
            "train.distance": SectionForm("Distance regulariser", DistanceConfig, "train.distance."),
        }
        self.rows = {row.key: row for form in self.forms.values() for row in form.rows.values()}
        self.preview = BiasPreview()
        self.forms["bias"].layout().addWidget(self.preview, 99, 0, 1, 2)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.data_check = DataCheck(self)
        self.data_check.started.connect(self.preview.show_checking)
        self.data_check.finished.connect(self._data_ok)
        self.data_check.failed.connect(self._data_failed)
        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self._check_data)
        self._checked_key: str | None = None
        self._data_error: tuple[str, str] | None = None  # (field key, reason) from the data check
        self._error_text = ""
        self._cfg: ExperimentConfig | None = None
        self.is_valid = False
        self._build_layout()
        for form in self.forms.values():
            form.edited.connect(self.revalidate)
        self.set_config(ExperimentConfig())

    def _build_layout(self) -> None:
        self.presets = QComboBox()
        self.presets.setObjectName("presets")
        self.presets.addItem("Choose a preset…", None)
        for name in preset_files():
            self.presets.addItem(name, name)
        self.presets.activated.connect(self._preset_chosen)
        load = QPushButton(icon("open_experiment"), "Load…")
        save = QPushButton(icon("save_experiment"), "Save…")
        load.clicked.connect(self.open_dialog)
        save.clicked.connect(self.save_dialog)
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset"))
        top.addWidget(self.presets, 1)
        top.addWidget(load)
        top.addWidget(save)
        body = QWidget()
        column = QVBoxLayout(body)
        for form in self.forms.values():
            column.addWidget(form)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.status)

    # -- reading and writing the form -------------------------------------------------
    def form_dict(self) -> dict:
        data = self.forms[""].values()
        for name in ("data", "bias", "model", "train"):
            data[name] = self.forms[name].values()
        data["train"]["distance"] = self.forms["train.distance"].values()
        return data

    def set_config(self, cfg: ExperimentConfig) -> None:
        data = cfg.to_dict()
        distance = data["train"].pop("distance")
        self.forms[""].set_values({k: v for k, v in data.items() if not isinstance(v, dict)})
        for name in ("data", "bias", "model", "train"):
            self.forms[name].set_values(data[name])
        self.forms["train.distance"].set_values(distance)
        self.revalidate()

    def config(self, need_data: bool = True) -> ExperimentConfig:
        """The experiment in the form; ConfigError unless every field is valid and, with
        ``need_data``, the data set was read successfully (what training needs; saving does not)."""
        if self._cfg is None or (need_data and not self.is_valid):
            raise ConfigError("<form>", "", "a valid experiment: fix the fields marked in red")
        return self._cfg

    # -- validation ---------------------------------------------------------------------
    def revalidate(self) -> None:
        for row in self.rows.values():
            row.show_error("")
        self._cfg = None
        try:
            data = self.form_dict()
            self._update_visibility(data)
            self._update_root_mode(data["data"]["source"])
            self._cfg = from_dict(data, "form")
        except FieldParseError as exc:
            self._show_field_error(exc.key, str(exc))
        except ConfigError as exc:
            self._show_field_error(exc.key, rejection(exc))
        self.preview.setEnabled(self._cfg is not None)  # greyed: it shows the last valid settings
        if self._cfg is not None:
            self.config_changed.emit(self._cfg)
            self._debounce.start()
        self._update_validity()

    def _update_visibility(self, data: dict) -> None:
        """Each section shows the fields whose declared "applies when" rule holds (engine.config)."""
        for section, form in self.forms.items():
            values = data
            for part in filter(None, section.split(".")):
                values = values[part]
            form.apply_rules(values)

    def _update_root_mode(self, source: str) -> None:
        self.root_editor.file_filter = "NumPy archive (*.npz)" if source == "tensors" else ""

    def _show_field_error(self, key: str, reason: str) -> None:
        row = self.rows.get(key.split("[")[0])
        if row is not None:
            row.show_error(reason)
        self._error_text = f"{row.label.text() if row else key}: {reason}"

    def settle(self, msecs: int = 30000) -> None:
        """Run a data check that is still waiting for the typing pause, and wait for it
        (its answer arrives with the next event processing)."""
        if self._debounce.isActive():
            self._debounce.stop()
            self._check_data()
        self.data_check.wait(msecs)

    def _check_data(self) -> None:
        if self._cfg is None:
            return
        key = repr((self._cfg.data, self._cfg.bias, self._cfg.seed))
        if key != self._checked_key:
            self._checked_key = key
            self._data_error = None
            self.data_check.request(self._cfg)
        elif self._data_error:
            self._show_field_error(*self._data_error)
        self._update_validity()

    def _data_ok(self, preview: dict) -> None:
        self._data_error = None
        self.class_editor.set_classes(preview["classes"])
        self.preview.show_preview(preview)
        self._update_validity()

    def _data_failed(self, error: BaseException) -> None:
        """Put the reason next to the field it is about: the folder, or the bias class."""
        key = getattr(error, "key", "")
        if key not in self.rows:
            key = "data.root" if self.rows["data.root"].editor.isVisibleTo(self) else "data.source"
        message = rejection(error) if isinstance(error, ConfigError) else str(error)
        self._data_error = (key, message)
        self.preview.show_error(message)
        self._show_field_error(key, message)
        self._update_validity()

    def _update_validity(self) -> None:
        checking = self.data_check.pending or self._debounce.isActive()
        valid = self._cfg is not None and not self._data_error and not checking
        if self._cfg is None or self._data_error:
            self.status.setText(f"Cannot start: {self._error_text}")
            self.status.setStyleSheet(ERROR_STYLE)
        else:
            self.status.setText("Checking the data…" if checking else "Ready to train.")
            self.status.setStyleSheet("")
        if valid != self.is_valid:
            self.is_valid = valid
            self.validity_changed.emit(valid)

    # -- presets and files --------------------------------------------------------------
    def _preset_chosen(self, index: int) -> None:
        name = self.presets.itemData(index)
        if name:
            self._apply(lambda: load_preset(name), str(preset_files()[name]))

    def load_toml(self, path: str | Path) -> bool:
        if self._apply(lambda: load_experiment(path), str(path)):
            self.file_loaded.emit(str(path))  # the user's own files go to the recent list, presets not
            return True
        return False

    def _apply(self, load: Callable[[], ExperimentConfig], path: str) -> bool:
        try:
            cfg = load()
        except LossLabError as exc:
            self.status.setText(f"Could not load {path}: {exc}")
            self.status.setStyleSheet(ERROR_STYLE)
            return False
        self.set_config(cfg)
        return True

    def save_toml(self, path: str | Path) -> None:
        self.config(need_data=False).save(path)
        self.file_loaded.emit(str(path))

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load experiment", "", TOML_FILTER)
        if path:
            self.load_toml(path)

    def save_dialog(self) -> None:
        if self._cfg is None:
            self.status.setText("Fix the fields marked in red before saving.")
            return
        suggested = f"{self._cfg.name}.toml"
        path, _ = QFileDialog.getSaveFileName(self, "Save experiment", suggested, TOML_FILTER)
        if path:
            self.save_toml(path)
