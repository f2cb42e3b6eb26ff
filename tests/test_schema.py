"""The one options mechanism: validation, round trips, flags and attributes from one declaration."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import h5py
import numpy as np
import pytest

from engine.errors import ConfigError
from engine.schema import (
    Settings,
    add_options,
    epoch_or_final,
    equals,
    from_args,
    given,
    setting,
    settings_of,
)


@dataclass(frozen=True)
class Inner(Settings):
    SOURCE = "demo"
    PREFIX = "inner."
    rate: float = setting(0.5, "a rate", min=0.0, max=1.0)
    sizes: list[int] = setting(help="layer sizes", factory=lambda: [8, 8], min=1)


@dataclass(frozen=True)
class Demo(Settings):
    SOURCE = "demo"
    checkpoint: int | str = setting("final", "epoch or final", check=epoch_or_final)
    mode: str = setting("plain", "how", choices=("plain", "fancy"))
    count: int = setting(3, "how many", min=1, applies=equals("mode", "fancy"))
    target: str | None = setting(None, "another file")
    via: str | None = setting(None, "third file", applies=given("target"))
    size: tuple[int, int] = setting((640, 480), "pixels", min=64, parse=lambda t: tuple(map(int, t.split("x"))))
    levels: tuple[float, ...] = setting((), "contour levels")
    fancy: bool = setting(False, "be fancy")
    table: dict[str, int] = setting(factory=dict, help="free arguments")
    klass: int = setting(-1, "a class", min=-1, key="class")
    inner: Inner = dataclasses.field(default_factory=Inner)

    def check_combinations(self) -> None:
        if self.via and not self.target:
            raise ConfigError("via", self.via, "no via without a target", self.SOURCE)


def test_round_trips_keep_every_value(tmp_path):
    demo = Demo(checkpoint="7", mode="fancy", count=5, target="a.h5", via="b.h5", size=[800, 600],
                levels=[0.5, 1], fancy=True, table={"depth": 3}, klass=2, inner=Inner(0.25, [4]))
    assert demo.checkpoint == 7 and demo.size == (800, 600) and demo.levels == (0.5, 1.0)
    assert Demo.from_dict(demo.to_dict()) == demo
    assert Demo.from_toml(demo.to_toml()) == demo
    assert Demo.from_json(demo.to_json()) == demo
    assert demo.to_dict()["class"] == 2 and "klass" not in demo.to_dict()
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs.update(demo.to_attrs())
        f.attrs["written_by"] = "another part of the file"  # ignored by from_attrs
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert Demo.from_attrs(dict(f.attrs)) == demo
        assert f.attrs["inner.rate"] == 0.25
    blank = Demo()
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f.attrs.update(blank.to_attrs())
    with h5py.File(tmp_path / "b.h5", "r") as f:
        assert Demo.from_attrs(dict(f.attrs)) == blank


@pytest.mark.parametrize(("data", "key", "fragment"), [
    ({"count": 0}, "count", "an integer in [1, inf]"),
    ({"count": "3"}, "count", "an integer"),
    ({"mode": "odd"}, "mode", "one of plain, fancy"),
    ({"checkpoint": "best"}, "checkpoint", "an epoch number >= 0 or 'final'"),
    ({"size": [640]}, "size", "a list of 2 integers"),
    ({"size": [640, 10]}, "size[1]", "[64, inf]"),
    ({"levels": [1, float("nan")]}, "levels[1]", "finite"),
    ({"fancy": 1}, "fancy", "true or false"),
    ({"table": 3}, "table", "a table"),
    ({"inner": {"rate": 2.0}}, "inner.rate", "a number in [0.0, 1.0]"),
    ({"inner": {"sizes": [4, 0]}}, "inner.sizes[1]", "[1, inf]"),
    ({"inner": {"speed": 1}}, "inner.speed", "one of the keys rate, sizes"),
    ({"via": "b.h5"}, "via", "no via without a target"),
])
def test_errors_name_file_key_value_and_what_is_allowed(data, key, fragment):
    with pytest.raises(ConfigError) as caught:
        Demo.from_dict(data, "demo.toml")
    assert caught.value.key == key
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"demo.toml: {key} = ")


def test_direct_construction_is_validated_with_the_section_prefix():
    with pytest.raises(ConfigError, match=r"^demo: inner.rate = 1.5 is not valid; expected a number in"):
        Inner(rate=1.5)
    assert Inner(rate=np.float32(0.5)).rate == 0.5 and type(Inner(rate=1).rate) is float
    with pytest.raises(ConfigError, match="one of"):
        Demo().replace(nonsense=1)


def test_flags_come_from_the_declaration():
    parser = argparse.ArgumentParser()
    add_options(parser, Demo)
    text = parser.format_help()
    for flag in ("--checkpoint", "--mode {plain,fancy}", "--count N", "--size", "--fancy", "--klass"):
        assert flag in text
    assert "applies when mode = fancy" in text and "--table" not in text  # a table is no flag
    args = parser.parse_args(["--count", "4", "--size", "800x600", "--levels", "0.5,1", "--fancy"])
    demo = from_args(Demo, args)
    assert (demo.count, demo.size, demo.levels, demo.fancy, demo.mode) == (4, (800, 600), (0.5, 1.0), True, "plain")
    with pytest.raises(ConfigError, match="--count = 0"):
        from_args(Demo, parser.parse_args(["--count", "0"]))


def test_rules_read_the_other_fields():
    rules = {s.name: s.applies for s in settings_of(Demo) if s.applies}
    assert rules["count"]({"mode": "fancy"}) and not rules["count"]({"mode": "plain"})
    assert rules["via"]({"target": "a.h5"}) and not rules["via"]({"target": None})
    assert (rules["count"] & rules["via"]).text == "mode = fancy and target is given"
