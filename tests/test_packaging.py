"""Installability: bundled resources found through importlib.resources, preset names accepted
wherever an experiment file is, and every bundled file declared for the wheel."""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import load_experiment
from engine.errors import ConfigError
from engine.resources import find_experiment, presets

ROOT = Path(__file__).parents[1]


def losslab(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_every_bundled_preset_is_listed_with_its_description():
    found = presets()
    on_disk = sorted(p.stem for p in (ROOT / "resources" / "presets").glob("*.toml"))
    assert sorted(found) == on_disk
    quick = found["digits-mlp-quick"]
    assert quick.description.startswith("The quickest experiment: a 2x64 ReLU MLP")
    assert load_experiment(quick.path).name == "digits-mlp-quick"


def test_a_preset_name_or_a_path_names_an_experiment(tmp_path):
    assert find_experiment("digits-unbiased").name == "digits-unbiased.toml"
    assert find_experiment("digits-unbiased.toml") == find_experiment("digits-unbiased")
    own = tmp_path / "digits-unbiased.toml"  # a user's own file wins over the bundled one
    own.write_text('name = "mine"\n')
    assert find_experiment(own) == own


def test_an_unknown_name_lists_the_presets():
    with pytest.raises(ConfigError) as error:
        find_experiment("no-such-preset")
    message = str(error.value)
    assert "'no-such-preset'" in message and "bundled preset name" in message
    assert "digits-mlp-quick" in message and "mnist1d-taaf" in message


def declared_resource_patterns() -> list[str]:
    """setup.py's RESOURCE_FILES list, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "RESOURCE_FILES":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no RESOURCE_FILES")


def test_every_file_under_resources_is_declared_for_the_wheel():
    """A bundled file type setup.py does not list would silently be missing from the wheel."""
    patterns = declared_resource_patterns()
    files = [p.relative_to(ROOT / "resources").as_posix() for p in (ROOT / "resources").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"]
    assert "presets/digits-mlp-quick.toml" in files and "icons/losslab.svg" in files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not missing, f"add these to RESOURCE_FILES in setup.py: {missing}"


def test_presets_command_lists_names_and_descriptions():
    result = losslab("presets")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("digits-mlp-quick"))
    assert "The quickest experiment" in line
    assert f"Experiment presets ({len(presets())}):" in result.stdout


def test_train_accepts_a_preset_name_from_any_folder(tmp_path):
    result = losslab("train", "digits-nope", "--out", str(tmp_path / "r.h5"), cwd=tmp_path)
    assert result.returncode == 2 and "digits-mlp-quick" in result.stderr
    assert "Traceback" not in result.stderr
