"""``DIR/study.json``: which step of which variant is finished, written atomically after each step.

A step counts as done only when it is recorded here *and* its output file exists, so a study
killed at any moment (even ``kill -9`` while this file is written: it is replaced atomically)
redoes at most the step that was running.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import RunFileError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; run one study process per folder there
    fcntl = None

RECORD = "study.json"
LOCK = "study.json.lock"


class StudyRecord:
    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        self.folder = folder
        self.data = data
        self.owned: set[str] = set()  # variants this process works on (the only ones it writes)

    @classmethod
    def open(cls, folder: Path, study_name: str, source: str) -> StudyRecord:
        path = folder / RECORD
        data: dict[str, Any] = {"study": study_name, "source": source, "variants": {}}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise RunFileError(f"'{path}': not a readable study record ({exc})") from exc
            if data.get("study") != study_name:
                raise RunFileError(f"'{folder}' holds study {data.get('study')!r}, not {study_name!r}; "
                                   "choose another --out")
            data["source"] = source
        return cls(folder, data)

    def variant(self, name: str) -> dict[str, Any]:
        self.owned.add(name)
        return self.data["variants"].setdefault(name, {"steps": {}})

    def check_config(self, name: str, config_toml: str) -> None:
        """A variant folder belongs to one experiment: refuse to mix in a changed one."""
        entry = self.variant(name)
        if entry.get("config", config_toml) != config_toml:
            raise RunFileError(f"'{self.folder / name}': made by a different experiment than variant {name!r} "
                               "now describes; choose another --out or delete that folder")
        entry["config"] = config_toml

    def step(self, name: str, step: str) -> dict[str, Any] | None:
        return self.variant(name)["steps"].get(step)

    def mark(self, name: str, step: str, seconds: float, **extra: Any) -> None:
        self.variant(name)["steps"][step] = {"done": True, "seconds": seconds,
                                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}
        self.save()

    def mark_failed(self, name: str, step: str, message: str) -> None:
        self.variant(name)["steps"][step] = {"done": False, "error": message}
        self.save()

    def seconds(self, name: str) -> float:
        return sum(float(s.get("seconds", 0.0)) for s in self.variant(name)["steps"].values() if s.get("done"))

    def save(self) -> None:
        """Merge this process's variants into the file: other processes may be running other
        variants of the same study (``--variant``), so their entries are re-read, never overwritten."""
        path = self.folder / RECORD
        with locked(self.folder):
            current = read_record(self.folder) or {}
            merged = {**current.get("variants", {}), **self._touched()}
            self.data["variants"] = {**self.data["variants"], **merged}
            write_atomic(path, json.dumps({**self.data, "variants": merged}, indent=1, sort_keys=True))

    def _touched(self) -> dict[str, Any]:
        return {name: entry for name, entry in self.data["variants"].items() if name in self.owned}


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/study.json.lock`` (released by the OS if the process dies)."""
    if fcntl is None:
        yield
        return
    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` is always either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None
