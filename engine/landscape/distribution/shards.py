"""Shard files: the points one process of a ``torchrun`` surface job has evaluated.

Process ``k`` of ``N`` writes its share of a surface ``S.h5`` to ``S.h5.rank<k>-of-<N>``: a
complete LossLab surface file of the same grid, options and directions, computed by
:func:`engine.landscape.compute_surface` and therefore exactly as crash-safe as ``S.h5``
(values before completion marks, NaN where another process works). Process 0 copies the
finished points into ``S.h5`` every few seconds and once more at the end, then deletes the shards.

A shard left by an interrupted job is merged into ``S.h5`` before the next job - with any number
of processes, or none - splits what is still missing. A shard computed with other options or
along other directions than ``S.h5`` is refused with an error, never merged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.errors import ConfigError, RunFileError
from engine.landscape.options import SurfaceOptions
from engine.storage import h5safe
from engine.storage.surface_file import FORMAT, SurfaceWriter, read_surface_attrs

SHARD_SUFFIX = re.compile(r"\.rank(\d+)-of-(\d+)$")
# attributes that must agree for a shard's numbers to belong in the main file
SAME = ("format", "metrics", "average_count", "origin_sha256", "directions_sha256")

Point = tuple[tuple[int, ...], dict[str, float]]


def shard_path(out: str | Path, rank: int, world_size: int) -> Path:
    out = Path(out)
    return out.with_name(f"{out.name}.rank{rank}-of-{world_size}")


def shard_files(out: str | Path) -> list[Path]:
    """The shard files of ``out`` present now, whatever the number of processes that wrote them."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    found = {}
    for path in out.parent.glob(f"{_glob_escape(out.name)}.rank*-of-*"):
        match = SHARD_SUFFIX.search(path.name)
        if match:
            found[int(match[2]), int(match[1])] = path  # by number of processes, then rank
    return [found[key] for key in sorted(found)]


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def read_pending(out: str | Path) -> np.ndarray:
    """Which points of the surface file ``out`` are still missing (read-only, shape of point_seconds)."""
    with _read(Path(out), locking=None) as f:
        return ~np.isfinite(h5safe.read(f, "point_seconds", out))


def merge_leftover_shards(out: str | Path) -> int:
    """Merge and delete the shards an interrupted job left next to ``out``; returns the points merged."""
    if not shard_files(out):
        return 0
    merger = ShardMerger(out)
    try:
        return len(merger.merge(remove=True))
    finally:
        merger.close()


class ShardMerger:
    """Copies finished points from the shards of ``out`` into ``out`` (held open for writing).

    ``own`` is the shard this process itself is writing: HDF5 shares a file opened twice in one
    process, so it is read through that shared handle instead of a second, unlocked one.
    """

    def __init__(self, out: str | Path, own: Path | None = None) -> None:
        self.out, self.own = Path(out), own
        self._expected = read_surface_attrs(self.out) or {}
        self._identity = _identity(self._expected, self.out)
        self.writer = SurfaceWriter(self.out)
        self._evaluators: dict[Path, str] = {}  # how each shard's points were computed

    def merge(self, *, remove: bool = False, tolerant: bool = False) -> list[Point]:
        """New points of every shard, written to ``out`` before any shard is deleted (``remove``).

        ``tolerant`` skips a shard that cannot be read right now (another process is creating
        or closing it); the next merge picks its points up.
        """
        shards, merged = shard_files(self.out), []
        for shard in shards:
            try:
                merged += self._merge_one(shard)
            except (OSError, KeyError):
                if not tolerant:
                    raise
        self.writer.flush()
        if remove:
            recorded = [self._evaluators[s] for s in shards if s in self._evaluators]
            if recorded:  # one record, as a single process writes it: the lowest rank's
                self.writer.set_attr("evaluator", recorded[0])
            for shard in shards:
                shard.unlink()
        return merged

    def close(self) -> None:
        self.writer.close()

    def _merge_one(self, shard: Path) -> list[Point]:
        with _read(shard, locking=None if shard == self.own else False) as f:
            attrs = _plain_attrs(f)
            self._check(shard, attrs)
            if "evaluator" in attrs:
                self._evaluators.setdefault(shard, str(attrs["evaluator"]))
            # Members are checked (kind, shape, size) before reading; a missing one is still a
            # KeyError, which a tolerant live merge skips while the shard is being created.
            marks = h5safe.check_dataset(f["point_seconds"], shard)
            if marks.shape != self.writer.shape:
                raise RunFileError(
                    f"{shard} holds a grid of {marks.shape} points, {self.out} one of "
                    f"{self.writer.shape}; delete the shard or choose another --out"
                )
            seconds = marks[()]
            new = np.isfinite(seconds) & self.writer.pending()
            if not new.any():
                return []
            prefix = "average/" if self.writer.average > 1 else ""
            raw = {m: h5safe.check_dataset(f[prefix + m], shard, size=seconds.size)[()] for m in self.writer.metrics}
        points = []
        for index in zip(*np.nonzero(new)):
            index = tuple(int(i) for i in index)
            values = {m: float(raw[m][index]) for m in self.writer.metrics}
            self.writer.record(index, values, float(seconds[index]))
            points.append((index, values))
        return points

    def _check(self, shard: Path, attrs: dict[str, Any]) -> None:
        """A shard of another surface (e.g. one whose main file was deleted) must not be merged."""
        theirs = {k: attrs.get(k) for k in SAME} | _identity(attrs, shard)
        ours = {k: self._expected.get(k) for k in SAME} | self._identity
        for key, value in ours.items():
            if theirs.get(key) != value:
                raise RunFileError(
                    f"{shard} holds points of another surface than {self.out}: {key} is "
                    f"{theirs.get(key)!r} there and {value!r} here; delete the shard or choose another --out"
                )


def _identity(attrs: dict[str, Any], path: Path) -> dict[str, Any]:
    if attrs.get("format") != FORMAT:
        raise RunFileError(f"{path} is not a LossLab surface file (attribute format = {attrs.get('format')!r})")
    try:
        return SurfaceOptions.from_attrs(attrs).identity()
    except ConfigError as exc:
        raise RunFileError(f"{path}: stored options are not valid ({exc})") from exc


def _read(path: Path, locking: bool | None) -> h5py.File:
    # Other processes hold their shards open for writing, so those are read unlocked (locking=False):
    # after creation only fixed-size contents change, values before marks, so a read sees whole
    # points. A shard this process writes itself is opened as its writer opened it (None).
    try:
        return h5py.File(path, "r", locking=locking)
    except FileNotFoundError as exc:
        raise RunFileError(f"{path}: no such surface file") from exc


def _plain_attrs(f: h5py.File) -> dict[str, Any]:
    out = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.ndarray):
            value = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
