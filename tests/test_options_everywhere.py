"""One declaration reaches every place: a field added to an options type shows up in the CLI help,
the Qt form and the saved file attributes; every real options type round-trips and explains errors."""

from __future__ import annotations

import argparse
import dataclasses

import h5py
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox

from app.display import DisplaySettings
from app.panels.config_form import SettingsForm
from app.views.controls import DisplayControls
from engine.analysis.options import FlatnessOptions
from engine.config import ExperimentConfig, from_dict, from_toml_text
from engine.errors import ConfigError
from engine.export.options import ExportOptions
from engine.landscape.options import SurfaceOptions
from engine.schema import add_options, from_args, setting, settings_of


def _with_field(base: type, name: str, tp: type, declaration) -> type:
    """``base`` plus one declared field, made at run time as a later issue would add it."""
    return dataclasses.make_dataclass(f"Extended{base.__name__}", [(name, tp, declaration)], bases=(base,),
                                      frozen=base.__dataclass_params__.frozen)


def test_a_new_surface_option_reaches_the_cli_the_form_and_the_file(trained_run, tmp_path, qtbot):
    from engine.landscape.surface import compute_surface

    extended = _with_field(SurfaceOptions, "note", str, setting("", "a note stored with the surface",
                                                                label="Note"))
    parser = argparse.ArgumentParser()
    add_options(parser, extended)
    assert "--note TEXT" in parser.format_help() and "a note stored with the surface" in parser.format_help()
    # one process: a class made at run time cannot be sent to worker processes
    options = from_args(extended, parser.parse_args(["--note", "seen from the CLI", "--x=-1:1:3", "--subset",
                                                     "60", "--split", "test", "--workers", "1"]))
    assert options.note == "seen from the CLI" and options.x == "-1:1:3"

    form = SettingsForm("Surface", extended)
    qtbot.addWidget(form)
    assert form.rows["note"].label.text() == "Note"
    form.rows["note"].editor.setText("typed in the app")
    form.rows["x"].editor.setText("-1:1:3")
    assert form.settings().note == "typed in the app"

    out = compute_surface(str(trained_run), options, tmp_path / "noted.h5")
    with h5py.File(out, "r") as f:
        attrs = dict(f.attrs)
    assert attrs["note"] == "seen from the CLI"
    assert extended.from_attrs(attrs).note == "seen from the CLI"
    assert SurfaceOptions.from_attrs(attrs).identity() == SurfaceOptions(x="-1:1:3", subset=60, split="test",
                                                                         workers=1).identity()


def test_a_new_display_setting_gets_a_generated_editor(qtbot):
    extended = _with_field(DisplaySettings, "grid_lines", bool, setting(False, "draw the α-β grid lines",
                                                                        label="Grid lines"))
    controls = DisplayControls(settings=extended())
    qtbot.addWidget(controls)
    controls.show()
    box = controls.findChild(QCheckBox, "setting:grid_lines")
    assert box is not None and box.text() == "Grid lines" and box.toolTip().startswith("draw the α-β grid")
    with qtbot.waitSignal(controls.changed, timeout=3000) as signal:
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert signal.args[0].grid_lines is True and signal.args[0].log_scale is False
    assert extended.from_json(signal.args[0].to_json()).grid_lines is True


def test_display_errors_appear_under_their_field(qtbot):
    controls = DisplayControls()
    qtbot.addWidget(controls)
    controls.range_on.setChecked(True)
    controls.range_low.setValue(0.3)
    controls.range_high.setValue(0.1)
    qtbot.waitUntil(lambda: controls.field_errors["color_range"].text() != "", timeout=3000)
    assert controls.field_errors["color_range"].text().startswith("Fixed colour range: (0.3, 0.1) is not valid")
    assert "low 0.3 must be below high 0.1" in controls.field_errors["color_range"].text()
    assert controls.settings().color_range is None  # the view keeps the last valid settings


@pytest.mark.parametrize("instance", [
    SurfaceOptions(directions="interpolate", to="other.h5:3", x="-0.5:1.5:41", checkpoint=2, dir_type="states"),
    ExportOptions(format="png", metric="train_acc", log_scale=True, clamp_max=2.5, size=(640, 480),
                  color_range=(0.1, 2.0)),
    FlatnessOptions(checkpoint="4", top_k=3, surface="s.h5", radius=0.25, ignore_biasbn=True),
    DisplaySettings(metric="test_loss", clamp_max=3.0, color_range=(0.5, 2.0), contour_levels=(0.5, 1.0),
                    pbr=True),
])
def test_every_options_type_round_trips(instance, tmp_path):
    cls = type(instance)
    assert cls.from_json(instance.to_json()) == instance
    assert cls.from_toml(instance.to_toml()) == instance
    with h5py.File(tmp_path / "attrs.h5", "w") as f:
        f.attrs.update(instance.to_attrs())
    with h5py.File(tmp_path / "attrs.h5", "r") as f:
        back = cls.from_attrs(dict(f.attrs))
    if cls is SurfaceOptions:  # run references are stored as absolute paths
        assert back.to == f"{tmp_path.cwd() / 'other.h5'}:3" and back.replace(to="other.h5:3") == instance
    else:
        assert back == instance


def test_the_experiment_round_trips_through_toml_json_and_attrs(tmp_path):
    cfg = from_dict({"name": "rt", "bias": {"kind": "size", "fraction": 0.3, "class": 2},
                     "model": {"hidden": [16, 8]}, "train": {"milestones": [2, 4], "schedule": "milestones",
                                                             "distance": {"strength": 0.1}}})
    assert from_toml_text(cfg.to_toml()) == cfg
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg
    with h5py.File(tmp_path / "cfg.h5", "w") as f:
        f.attrs.update(cfg.to_attrs())
    with h5py.File(tmp_path / "cfg.h5", "r") as f:
        assert f.attrs["bias.class"] == 2 and f.attrs["train.distance.strength"] == 0.1
        assert ExperimentConfig.from_attrs(dict(f.attrs)) == cfg


@pytest.mark.parametrize(("cls", "data", "message"), [
    (SurfaceOptions, {"split": "valid"}, "surface.toml: split = 'valid' is not valid; expected one of train, test, "
                                         "both"),
    (SurfaceOptions, {"candidates": 1}, "surface.toml: candidates = 1 is not valid; expected an integer in [2, inf]"),
    (ExportOptions, {"size": [10, 10]}, "surface.toml: size = (10, 10) is not valid; expected two whole numbers of "
                                        "pixels from 64 to 8192"),
    (FlatnessOptions, {"top_k": 0}, "surface.toml: top_k = 0 is not valid; expected an integer in [1, inf]"),
    (FlatnessOptions, {"topk": 1}, "surface.toml: topk = 1 is not valid; expected one of the keys"),
    (DisplaySettings, {"z_scale": 0}, "surface.toml: z_scale = 0.0 is not valid; expected a number in [0.01, 100.0]"),
])
def test_errors_name_file_key_value_and_what_is_allowed(cls, data, message):
    with pytest.raises(ConfigError) as caught:
        cls.from_dict(data, "surface.toml")
    assert str(caught.value).startswith(message)


def test_cli_flags_are_the_declared_fields():
    for cls, skipped in ((SurfaceOptions, set()), (ExportOptions, set()), (FlatnessOptions, set())):
        parser = argparse.ArgumentParser()
        add_options(parser, cls)
        flags = {a.dest for a in parser._actions} - {"help"}
        assert flags == {s.name for s in settings_of(cls)} - skipped


def test_a_generated_form_edits_optional_choices_and_pairs(qtbot):
    form = SettingsForm("Export", ExportOptions)
    qtbot.addWidget(form)
    assert form.settings() == ExportOptions()  # "(default)" format, no colour range
    form.rows["format"].editor.set_value("png")
    form.rows["size"].editor.setText("800, 600")
    form.rows["color_range"].editor.setText("0.1, 2")
    assert form.settings() == ExportOptions(format="png", size=(800, 600), color_range=(0.1, 2.0))
    assert form.rows["colormap"].label.text() == "Colour map"
    form.rows["size"].editor.setText("800")
    with pytest.raises(ConfigError) as caught:
        form.settings()
    assert caught.value.key == "size" and "a list of 2 integers" in str(caught.value)
    form.set_settings(ExportOptions(format="csv"))
    assert form.settings().format == "csv" and form.settings().size == (1024, 768)


def test_a_new_flatness_option_reaches_the_analysis_form_and_the_cli(qtbot):
    from app.panels.analysis_panel import AnalysisPanel
    from app.worker import JobRunner

    extended = _with_field(FlatnessOptions, "note", str, setting("", "a note kept with the report", label="Note"))
    parser = argparse.ArgumentParser()
    add_options(parser, extended)
    assert "--note TEXT" in parser.format_help()
    runner = JobRunner()
    panel = AnalysisPanel(runner, options_type=extended)
    qtbot.addWidget(panel)
    shown = {panel.form_layout.labelForField(editor).text() for editor in panel.editors.values()}
    assert {"Note", "Seed", "Radius"} <= shown  # every declared field but the surface file has a row
    panel.editors["note"].setText("typed in the app")
    panel.editors["subset"].setValue(123)
    options = panel.options()
    assert options.note == "typed in the app" and options.subset == 123 and options.surface is None
    runner.shutdown()
