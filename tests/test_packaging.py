"""Installability: bundled resources found through importlib.resources, preset names accepted
wherever an experiment file is, and every bundled file declared for the wheel."""

from __future__ import annotations

import ast
import fnmatch
import os
import shutil
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


# -- desktop integration (packaging/linux), checked with the freedesktop tools themselves ---------
LINUX = ROOT / "packaging" / "linux"
APP_ID = "org.losslab.LossLab"


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install {package} (packaging/setup.sh installs it)"
    return found


def test_desktop_entry_validates():
    result = subprocess.run([tool("desktop-file-validate", "desktop-file-utils"), str(LINUX / f"{APP_ID}.desktop")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "error" not in result.stdout, result.stdout


def test_appstream_metainfo_validates():
    result = subprocess.run([tool("appstreamcli", "appstream"), "validate", "--no-net",
                             str(LINUX / f"{APP_ID}.metainfo.xml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation was successful" in result.stdout


def test_icons_have_the_size_their_folder_names():
    from PIL import Image

    pngs = sorted((LINUX / "icons" / "hicolor").glob("*/apps/*.png"))
    assert {p.parent.parent.name for p in pngs} >= {"16x16", "32x32", "48x48", "128x128", "256x256", "512x512"}
    for png in pngs:
        width, height = (int(n) for n in png.parent.parent.name.split("x"))
        with Image.open(png) as image:
            assert image.size == (width, height) and image.mode == "RGBA", png
            assert image.getpixel((0, 0))[3] == 0 and image.getpixel((width // 2, height // 2))[3] == 255, png


def test_mime_types_tell_runs_and_surfaces_from_other_hdf5(tmp_path, trained_run):
    """Installed with install.sh, the shared-mime-info database (read here by Qt) recognises
    LossLab's run and surface files by content, and leaves other HDF5 files alone."""
    import h5py

    from engine.landscape import SurfaceOptions, compute_surface

    tool("update-mime-database", "shared-mime-info")
    data = tmp_path / "share"
    subprocess.run(["bash", str(LINUX / "install.sh")], env={**os.environ, "PREFIX": str(data)}, check=True,
                   capture_output=True)
    surface = compute_surface(trained_run, SurfaceOptions(x="-1:1:3", y="-1:1:3", workers=1, seed=0),
                              tmp_path / "s.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = [1, 2, 3]
    script = ("import sys; from PySide6.QtCore import QMimeDatabase; db = QMimeDatabase(); "
              "print(' '.join(db.mimeTypeForFile(p).name() for p in sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", script, str(trained_run), str(surface), str(tmp_path / "plain.h5")],
                            env={**os.environ, "XDG_DATA_DIRS": f"{data}:/usr/share", "XDG_DATA_HOME": str(data)},
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["application/x-losslab-run", "application/x-losslab-surface",
                                     "application/x-hdf"]
    assert (data / "applications" / f"{APP_ID}.desktop").is_file()
    assert (data / "icons" / "hicolor" / "48x48" / "apps" / f"{APP_ID}.png").is_file()
