from pathlib import Path

import pytest

from engine.config import ExperimentConfig, from_dict, from_toml_text, load_experiment, with_overrides
from engine.errors import ConfigError

PRESETS = sorted(Path(__file__).parents[1].joinpath("resources", "presets").glob("*.toml"))


def test_every_preset_is_valid_and_round_trips():
    assert len(PRESETS) >= 12
    for path in PRESETS:
        cfg = load_experiment(path)
        assert from_toml_text(cfg.to_toml()) == cfg, path.name


def test_defaults_are_the_built_in_data():
    cfg = from_dict({})
    assert cfg.data.source == "digits" and cfg.bias.kind == "none"


def test_class_key_maps_to_target_class():
    cfg = from_dict({"bias": {"kind": "size", "fraction": 0.5, "class": 3}})
    assert cfg.bias.target_class == 3
    assert 'class = 3' in cfg.to_toml()


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"colour": 1}, "colour", "one of the keys"),
        ({"train": {"epochz": 3}}, "train.epochz", "one of the keys"),
        ({"train": {"epochs": "ten"}}, "train.epochs", "an integer"),
        ({"train": {"lr": True}}, "train.lr", "a number"),
        ({"bias": {"kind": "mislabel", "fraction": 1.5}}, "bias.fraction", "[0.0, 1.0]"),
        ({"bias": {"kind": "mislabel", "fraction": -0.1}}, "bias.fraction", "[0.0, 1.0]"),
        ({"bias": {"kind": "salt"}}, "bias.kind", "one of"),
        ({"bias": {"kind": "size", "fraction": 0.3}}, "bias.class", "class index"),
        ({"model": {"arch": "resnet21"}}, "model.arch", "one of"),
        ({"model": {"hidden": [64, 0]}}, "model.hidden[1]", "[1, inf]"),
        ({"data": {"source": "cifar10"}}, "data.root", "a data folder"),
        ({"train": {"schedule": "milestones"}}, "train.milestones", "non-empty"),
        ({"train": {"milestones": [30, 10]}}, "train.milestones", "increasing"),
        ({"train": {"lr": float("nan")}}, "train.lr", "finite"),
        ({"model": {"arch": "user"}}, "model.user", "ClassName"),
        ({"train": {"distance": {"sigma": 0.0}}}, "train.distance.sigma", "[1e-12"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(data, key, fragment):
    with pytest.raises(ConfigError) as info:
        from_dict(data, "exp.toml")
    assert info.value.key == key
    assert fragment in str(info.value)
    assert str(info.value).startswith("exp.toml: ")


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="valid TOML"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match="existing experiment"):
        load_experiment(tmp_path / "missing.toml")


def test_overrides_are_validated():
    cfg = with_overrides(ExperimentConfig(), {"train.epochs": 7, "bias.kind": "mislabel", "bias.fraction": 0.2})
    assert cfg.train.epochs == 7 and cfg.bias.fraction == 0.2
    with pytest.raises(ConfigError):
        with_overrides(cfg, {"train.epochs": -1})
