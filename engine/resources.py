"""LossLab's bundled files (presets, studies, icons), read with importlib.resources.

They live in the repository's ``resources/`` folder, installed as the package
``losslab_resources``, so a source checkout, an editable install, a wheel and a PyInstaller
bundle all find them the same way. :func:`find_experiment` is the one place where a command's
EXPERIMENT argument becomes a file: an existing path, else a bundled preset's name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from engine.errors import ConfigError

PACKAGE = "losslab_resources"


def bundled(*parts: str) -> Traversable:
    """A file or folder inside the bundled resources, e.g. ``bundled("presets")``."""
    node = resources.files(PACKAGE)
    for part in parts:
        node = node / part
    return node


def _tomls(folder: str) -> dict[str, Traversable]:
    node = bundled(folder)
    if not node.is_dir():
        return {}
    return {f.name.removesuffix(".toml"): f for f in sorted(node.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".toml")}


@dataclass(frozen=True)
class BundledFile:
    """One preset or study: its name (what commands accept), first description line, and file."""

    name: str
    description: str
    file: Traversable

    @property
    def path(self) -> Path:
        """A real path on disk (resources are installed as plain files, never zipped)."""
        return Path(str(self.file))


def _describe(name: str, file: Traversable) -> BundledFile:
    try:
        text = tomllib.loads(file.read_text(encoding="utf-8")).get("description", "")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        text = "(unreadable file)"
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return BundledFile(name, first, file)


def presets() -> dict[str, BundledFile]:
    """Bundled experiment presets by name, sorted."""
    return {name: _describe(name, f) for name, f in _tomls("presets").items()}


def studies() -> dict[str, BundledFile]:
    """Bundled study files by name, sorted."""
    return {name: _describe(name, f) for name, f in _tomls("studies").items()}


def find_experiment(spec: str | Path, kind: str = "presets") -> Path:
    """The file ``spec`` names: an existing path, else a bundled preset (or study with
    ``kind="studies"``) of that name, with or without ``.toml``. Anything else is a ConfigError
    that lists the bundled names."""
    path = Path(spec)
    if path.is_file():
        return path
    bundle = _tomls(kind)
    name = path.name.removesuffix(".toml") if path.parent == Path(".") else ""
    if name in bundle:
        return Path(str(bundle[name]))
    what = "experiment" if kind == "presets" else "study"
    names = ", ".join(bundle) or "none installed"
    raise ConfigError("<file>", str(spec), f"an existing {what} .toml file or a bundled {kind[:-1]} name "
                      f"(`losslab presets` lists them): {names}", str(spec))


def icon_file(name: str = "losslab.svg") -> Path:
    """A bundled icon file (the app's own icon by default)."""
    return Path(str(bundled("icons", name)))
