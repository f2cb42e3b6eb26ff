"""The workspace session in a small JSON project file: items, display settings, layout and camera.

Paths inside the project's folder are stored relative to it, so a folder of runs, surfaces and
its ``.losslab.json`` can be moved or shared as a whole. Reading validates every field and names
the file and field in its error; a missing data file is reported, the others still open.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from app.display import DisplaySettings
from app.views.multi_scene import LAYOUTS
from app.workspace import KINDS, Workspace
from engine.errors import ConfigError, LossLabError

FORMAT = "losslab-project"
VERSION = 1
SUFFIX = ".losslab.json"
FILTER = f"LossLab project (*{SUFFIX})"


def is_project_file(path: str | Path) -> bool:
    return str(path).lower().endswith(SUFFIX)


def project_data(workspace: Workspace, settings: DisplaySettings, layout: str, camera: list | None,
                 folder: Path) -> dict[str, Any]:
    items = [dict(item.to_dict(), path=_portable(item.path, folder)) for item in workspace.items]
    display = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()}
    return {"format": FORMAT, "version": VERSION, "items": items, "display": display, "layout": layout,
            "camera": camera}


def save_project(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    if not is_project_file(path):
        path = path.with_name(path.name.removesuffix(".json") + SUFFIX)
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise LossLabError(f"{path}: could not write the project file: {exc.strerror or exc}") from exc
    return path


def _portable(path: str, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path, folder)).as_posix() if Path(path).is_relative_to(folder) else path
    except ValueError:
        return path


def read_project(path: str | Path) -> dict[str, Any]:
    """The validated content of a project file, item paths made absolute."""
    path = Path(path)
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LossLabError(f"'{path}': file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("<file>", path.name, f"a LossLab project (JSON): {exc}", where) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError("format", data.get("format") if isinstance(data, dict) else data, f"'{FORMAT}'", where)
    if data.get("version") != VERSION:
        raise ConfigError("version", data.get("version"), f"{VERSION}", where)
    items = [_item(raw, k, path.parent, where) for k, raw in enumerate(data.get("items", []))]
    layout = data.get("layout", LAYOUTS[0])
    if layout not in LAYOUTS:
        raise ConfigError("layout", layout, f"one of {', '.join(LAYOUTS)}", where)
    return {"items": items, "display": _display(data.get("display", {}), where), "layout": layout,
            "camera": _camera(data.get("camera"), where)}


def _item(raw: Any, k: int, folder: Path, where: str) -> dict[str, Any]:
    key = f"items[{k}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
        raise ConfigError(key, raw, "a table with path, kind, name, colour, visible", where)
    if raw.get("kind") not in KINDS:
        raise ConfigError(f"{key}.kind", raw.get("kind"), f"one of {', '.join(KINDS)}", where)
    path = Path(raw["path"])
    return {"path": str(path if path.is_absolute() else folder / path), "name": str(raw.get("name", "")),
            "colour": str(raw.get("colour", "")), "visible": bool(raw.get("visible", True))}


def _display(raw: Any, where: str) -> DisplaySettings:
    if not isinstance(raw, dict):
        raise ConfigError("display", raw, "a table of display settings", where)
    names = {f.name for f in dataclasses.fields(DisplaySettings)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"display.{unknown[0]}", raw[unknown[0]], f"one of {', '.join(sorted(names))}", where)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return DisplaySettings(**values)
    except ConfigError as exc:
        raise ConfigError(f"display.{exc.key}", exc.value, exc.allowed, where) from exc


def _camera(raw: Any, where: str) -> list | None:
    if raw is None:
        return None
    ok = (isinstance(raw, list) and len(raw) == 3
          and all(isinstance(v, list) and len(v) == 3 and all(isinstance(n, int | float) for n in v) for v in raw))
    if not ok:
        raise ConfigError("camera", raw, "three [x, y, z] lists: position, focal point, view up", where)
    return raw
