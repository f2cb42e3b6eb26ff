"""Icons (qtawesome, and LossLab's own bundled SVG) and experiment presets (bundled, see engine.resources)."""

from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from PySide6.QtGui import QIcon

from engine.config import ExperimentConfig, load_experiment
from engine.resources import icon_file, presets

# One place that says which picture each action shows, so toolbar and menus agree.
ICONS = {
    "open": "fa5s.folder-open",
    "open_experiment": "fa5s.file-import",
    "save_experiment": "fa5s.save",
    "start": "fa5s.play",
    "pause": "fa5s.pause",
    "stop": "fa5s.stop",
    "resume": "fa5s.step-forward",
    "surface": "fa5s.mountain",
    "cancel": "fa5s.times",
    "export": "fa5s.file-export",
    "screenshot": "fa5s.camera",
    "movie": "fa5s.film",
    "csv": "fa5s.file-csv",
    "compare": "fa5s.columns",
    "experiment": "fa5s.flask",
    "training": "fa5s.chart-line",
    "view3d": "fa5s.cube",
    "device": "fa5s.microchip",
    "about": "fa5s.info-circle",
    "browse": "fa5s.folder",
    "reset": "fa5s.undo",
}


def icon(name: str) -> QIcon:
    """The icon for an action name from :data:`ICONS` (KeyError for an unknown name)."""
    return qta.icon(ICONS[name])


def app_icon() -> QIcon:
    """LossLab's own icon (window, task bar, desktop entry)."""
    return QIcon(str(icon_file()))


def preset_files() -> dict[str, Path]:
    """Preset name -> bundled TOML path, sorted by name."""
    return {name: entry.path for name, entry in presets().items()}


def load_preset(name: str) -> ExperimentConfig:
    """Read one preset; a broken preset raises ConfigError naming the file."""
    return load_experiment(preset_files()[name])
