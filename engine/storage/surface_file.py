"""Surface files (HDF5) in tomgoldstein/loss-landscape's names, crash-safe and resumable.

Layout (``nx = len(x)``, ``ny = len(y)``)::

    xcoordinates (nx,)   ycoordinates (ny,)            ycoordinates only in 2D
    train_loss, train_acc, test_loss, test_acc         2D: (ny, nx), value[j, i] at (x[i], y[j]); 1D: (nx,)
    <metric>_std, average/<metric> (N, nx)             1D curves averaged over N random directions
    point_seconds                                      evaluation seconds per point; NaN = not computed
    directions/x/<name>, directions/y/<name>           exact direction tensors (N stacked when averaged)
    pca/explained_variance, pca/path_x, pca/path_y, pca/epochs
    attrs: losslab_version, run_file, checkpoint_epoch, every option, cosine, compute_seconds, ...

loss-landscape fills its points in ``np.meshgrid(x, y)`` order, so its C-ordered 2D data is
(ny, nx) even though it declares (nx, ny); both are read as ``reshape(ny, nx)``. Its
uncomputed points are -1 and read as NaN. In LossLab files a point is computed when its
``point_seconds`` is set (written after its values), so a diverged point keeps its NaN/inf.

Crash safety: the file is built under ``<name>.partial`` and renamed when its coordinates,
directions and all-NaN datasets exist; afterwards only the contents of fixed-size
contiguous datasets change (no HDF5 metadata), values before ``point_seconds``, then flush.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.errors import LossLabError, RunFileError, is_disk_full, output_error
from engine.storage import h5safe

FORMAT = "losslab-surface"
FORMAT_VERSION = 1
METRIC_ORDER = ("train_loss", "train_acc", "test_loss", "test_acc")
LL_NOT_COMPUTED = -1.0


@dataclass
class Surface:
    """The one surface type: what a file holds, what a running job has so far, what views and
    exports draw. ``values[m]`` is (len(y), len(x)) in 2D and (len(x),) in 1D; NaN = pending.

    For a 1D curve averaged over N random directions, ``samples[m]`` is (N, len(x)) and
    ``values[m]``/``std[m]`` are its mean and standard deviation over directions, set where
    every direction is computed (:func:`averaged`, the one place they are computed).
    """

    path: Path
    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    std: dict[str, np.ndarray] = field(default_factory=dict)  # averaged 1D curves
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # (N, nx) per direction
    point_seconds: np.ndarray | None = None
    directions: dict[str, Any] = field(default_factory=dict)  # method, cosine, names, shapes
    trajectory: np.ndarray | None = None  # (K, 2) PCA path
    trajectory_epochs: np.ndarray | None = None
    explained_variance: np.ndarray | None = None

    @classmethod
    def empty(cls, path: str | Path, x: np.ndarray, y: np.ndarray | None, attrs: dict[str, Any]) -> Surface:
        """A surface with no metric yet, filled in by :meth:`record` (a job's live view)."""
        y = None if y is None else np.asarray(y, dtype=float)
        return cls(Path(path), np.asarray(x, dtype=float), y, {}, dict(attrs))

    @property
    def is_2d(self) -> bool:
        return self.y is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """Every metric array's shape: (len(y), len(x)) in 2D, (len(x),) in 1D."""
        return _grid_shape(len(self.x), None if self.y is None else len(self.y))

    @property
    def metric_names(self) -> list[str]:
        return list(self.values)

    @property
    def computed(self) -> np.ndarray:
        """Boolean mask in the shape of the values: which points have been evaluated."""
        if self.point_seconds is not None:
            done = np.isfinite(self.point_seconds)
            return done.all(axis=0) if self.samples else done
        if not self.values:
            return np.zeros(self.shape, dtype=bool)
        first = next(iter(self.values.values()))
        return ~np.isnan(first)

    @property
    def pending(self) -> np.ndarray:
        """Points not evaluated yet (drawn as holes, never as numbers)."""
        return ~self.computed

    @property
    def is_complete(self) -> bool:
        return bool(self.computed.all())

    def copy(self) -> Surface:
        """An independent copy (arrays included), so a view's updates never write into the caller's."""
        def arrays(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: np.array(v, dtype=float) for k, v in d.items()}

        return dataclasses.replace(
            self, x=np.array(self.x, dtype=float), y=None if self.y is None else np.array(self.y, dtype=float),
            values=arrays(self.values), attrs=dict(self.attrs), std=arrays(self.std), samples=arrays(self.samples),
            point_seconds=None if self.point_seconds is None else np.array(self.point_seconds),
            trajectory=None if self.trajectory is None else np.array(self.trajectory, dtype=float),
        )

    def update_values(self, values: dict[str, np.ndarray], std: dict[str, np.ndarray] | None = None) -> None:
        """Replace metric arrays (and their std) for the same grid; shapes must match it."""
        for name, array in (values | (std or {})).items():
            if np.shape(array) != self.shape:
                raise RunFileError(f"{self.path}: values of {name!r} have shape {np.shape(array)}, "
                                   f"expected {self.shape} for this grid")
        self.values.update({k: np.array(v, dtype=float) for k, v in values.items()})
        self.std.update({k: np.array(v, dtype=float) for k, v in (std or {}).items()})

    def record(self, indices: list[tuple[int, ...]], values: dict[str, Any], average: int = 1) -> None:
        """Evaluated points as a job reports them: ``indices`` into the grid, or (direction, i)
        into ``samples`` when ``average`` > 1 (then the mean/std follow, as in the file)."""
        if not indices:
            return
        rows = tuple(np.array(axis) for axis in zip(*indices, strict=True))
        raw = (average, len(self.x)) if average > 1 else self.shape
        target = self.samples if average > 1 else self.values
        for metric, points in values.items():
            target.setdefault(metric, np.full(raw, np.nan))[rows] = np.asarray(points, dtype=float)
        if average > 1:
            for metric, samples in self.samples.items():
                self.values[metric], self.std[metric] = averaged(samples, samples)


def _grid_shape(nx: int, ny: int | None) -> tuple[int, ...]:
    return (nx,) if ny is None else (ny, nx)


def create_surface_file(
    path: Path,
    x: np.ndarray,
    y: np.ndarray | None,
    metrics: list[str],
    directions: dict[str, dict[str, np.ndarray]],
    attrs: dict[str, Any],
    extras: dict[str, np.ndarray] | None = None,
    average: int = 1,
) -> None:
    """Write the structure of a new surface (all points NaN) and move it into place at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    grid = _grid_shape(len(x), None if y is None else len(y))
    raw = (average, len(x)) if average > 1 else grid
    h5safe.check_writable_folder(path)
    planes = len(metrics) * (3 if average > 1 else 1) + 1
    h5safe.ensure_free_space(path, planes * int(np.prod(raw)) * 8
                             + sum(np.asarray(a).nbytes for t in directions.values() for a in t.values()))
    try:
        with h5py.File(partial, "w") as f:
            f.attrs.update(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "metrics": metrics,
                    "average_count": average,
                    **attrs,
                }
            )
            f["xcoordinates"] = np.asarray(x, dtype=np.float64)
            if y is not None:
                f["ycoordinates"] = np.asarray(y, dtype=np.float64)
            for group, tensors in directions.items():
                for name, array in tensors.items():
                    f.create_dataset(f"directions/{group}/{name}", data=array)
            for name, array in (extras or {}).items():
                f[name] = array
            nan = np.full(raw, np.nan)
            for m in metrics:
                f.create_dataset(m, data=np.full(grid, np.nan))
                if average > 1:
                    f.create_dataset(f"{m}_std", data=np.full(grid, np.nan))
                    f.create_dataset(f"average/{m}", data=nan)
            f.create_dataset("point_seconds", data=nan)
    except BaseException as exc:
        partial.unlink(missing_ok=True)  # our own partial file must not keep the disk full
        if isinstance(exc, (OSError, RuntimeError)) and is_disk_full(exc):
            raise output_error(path, exc, "no partial file was left behind") from exc
        raise
    os.replace(partial, path)


class SurfaceWriter:
    """Records evaluated points of an existing LossLab surface file and flushes them safely."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = _open(self.path, "r+")
        attrs = self._file.attrs
        self.metrics = [str(m) for m in np.ravel(h5safe.attr(self._file, "metrics", self.path))]
        self.average = int(attrs.get("average_count", 1))
        prefix = "average/" if self.average > 1 else ""
        self._raw = {m: h5safe.read(self._file, prefix + m, self.path) for m in self.metrics}
        self.point_seconds = h5safe.read(self._file, "point_seconds", self.path)
        self._dirty: set[int] = set()  # first indices (rows) with points not yet written
        self._no_space = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.point_seconds.shape

    def pending(self) -> np.ndarray:
        return ~np.isfinite(self.point_seconds)

    def record(self, index: tuple[int, ...], values: dict[str, float], seconds: float) -> None:
        for m in self.metrics:
            self._raw[m][index] = values[m]
        self.point_seconds[index] = seconds
        self._dirty.add(index[0])

    def flush(self) -> None:
        """Values first, then the completion marks, then HDF5 flush: a kill never marks a point
        whose values did not reach the file. Only rows holding new points are rewritten."""
        rows = sorted(self._dirty)
        if not rows:
            return
        prefix = "average/" if self.average > 1 else ""
        for m, array in self._raw.items():
            self._file[prefix + m][rows] = array[rows]
            if self.average > 1:
                mean, std = averaged(array, self.point_seconds)
                self._file[m][...] = mean
                self._file[f"{m}_std"][...] = std
        self._file["point_seconds"][rows] = self.point_seconds[rows]
        self._file.flush()
        self._dirty.clear()

    def set_attr(self, name: str, value: Any) -> None:
        """A file attribute written (and flushed) before any point of this session, like
        ``compute_seconds`` at close: the only metadata changes after creation."""
        self._ensure_space()
        self._file.attrs[name] = value
        self._file.flush()

    def _ensure_space(self) -> None:
        """Points go into preallocated datasets; only attribute changes can need space. HDF5 cannot
        recover from a failed write, so none starts on a full disk."""
        try:
            h5safe.ensure_free_space(self.path, 0, "the points computed so far are kept; free space and run the "
                                     "same command again to continue")
        except LossLabError:
            self._no_space = True
            raise

    def close(self) -> None:
        if self._file.id.valid:
            self.flush()
            if not self._no_space:
                self._file.attrs["compute_seconds"] = float(np.nansum(self.point_seconds))
            self._file.close()


def averaged(samples: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over directions, NaN where any direction is not computed."""
    done = np.isfinite(seconds).all(axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(done, samples.mean(axis=0), np.nan)
        std = np.where(done, samples.std(axis=0), np.nan)
    return mean, std


def read_surface_attrs(path: Path) -> dict[str, Any] | None:
    """The attributes of a LossLab surface file, or None if ``path`` is another kind of file."""
    with _open(path, "r") as f:
        attrs = _plain(dict(f.attrs))
    return attrs if attrs.get("format") == FORMAT else None


def load_surface(path: str | Path) -> Surface:
    """Open a LossLab or loss-landscape surface file."""
    path = Path(path)
    with _open(path, "r") as f:
        if "xcoordinates" not in f:
            raise RunFileError(f"{path}: not a surface file (no 'xcoordinates' dataset)")
        attrs = _plain(dict(f.attrs))
        x = _coordinates(f, "xcoordinates", path)
        y = _coordinates(f, "ycoordinates", path) if "ycoordinates" in f else None
        if attrs.get("format") == FORMAT:
            return _load_losslab(f, path, x, y, attrs)
        return _load_loss_landscape(f, path, x, y, attrs)


def _coordinates(f: h5py.File, name: str, path: Path) -> np.ndarray:
    return h5safe.read(f, name, path, kinds="iuf").astype(np.float64).ravel()


def _load_losslab(
    f: h5py.File, path: Path, x: np.ndarray, y: np.ndarray | None, attrs: dict[str, Any]
) -> Surface:
    metrics = [str(m) for m in np.ravel(h5safe.attr(f, "metrics", path, "the names of the stored metrics"))]
    size = len(x) * (1 if y is None else len(y))
    average = int(attrs.get("average_count", 1))
    values = {m: h5safe.read(f, m, path, size=size) for m in metrics}
    seconds = h5safe.read(f, "point_seconds", path, size=size * average, what="which points are computed")
    surface = Surface(path, x, y, values, attrs, point_seconds=seconds)
    if average > 1:
        surface.std = {m: h5safe.read(f, f"{m}_std", path, size=size) for m in metrics}
        surface.samples = {m: h5safe.read(f, f"average/{m}", path, size=size * average) for m in metrics}
    surface.attrs["compute_seconds"] = float(np.nansum(surface.point_seconds))
    if "directions" in f:
        surface.directions = {
            "method": attrs.get("directions", ""),
            "cosine": attrs.get("cosine"),
            **{
                axis: {n: tuple(d.shape) for n, d in f["directions"][axis].items()}
                for axis in f["directions"]
            },
        }
    if "pca" in f:
        surface.trajectory = _path(f, "pca", path)
        surface.trajectory_epochs = h5safe.read(f, "pca/epochs", path, ndim=1, size=len(surface.trajectory))
        surface.explained_variance = h5safe.read(f, "pca/explained_variance", path, ndim=1)
    if "curve" in f:  # a mode-connecting curve on the plane through its end points and bend
        surface.trajectory = _path(f, "curve", path)
    return surface


def _path(f: h5py.File, group: str, path: Path) -> np.ndarray:
    """A (K, 2) path in the plane from ``group/path_x`` and ``group/path_y``, checked before reading."""
    xs = h5safe.read(f, f"{group}/path_x", path, ndim=1)
    return np.stack([xs, h5safe.read(f, f"{group}/path_y", path, ndim=1, size=len(xs))], axis=1)


def _load_loss_landscape(
    f: h5py.File, path: Path, x: np.ndarray, y: np.ndarray | None, attrs: dict[str, Any]
) -> Surface:
    grid = _grid_shape(len(x), None if y is None else len(y))
    values = {}
    for name in _metric_datasets(f, int(np.prod(grid))):
        # C-ordered data filled in meshgrid(x, y) order: row j is y[j], whatever shape is declared
        array = h5safe.read(f, name, path, size=int(np.prod(grid))).astype(np.float64).reshape(grid)
        values[name] = np.where(array == LL_NOT_COMPUTED, np.nan, array)
    if not values:
        raise RunFileError(
            f"{path}: no surface values found (expected e.g. 'train_loss' with {int(np.prod(grid))} values)"
        )
    if "dir_file" in f:
        attrs["dir_file"] = _plain({"d": f["dir_file"][()]})["d"]
    return Surface(path, x, y, values, attrs)


def _metric_datasets(f: h5py.File, size: int) -> list[str]:
    known = [m for m in METRIC_ORDER if m in f]
    others = sorted(
        n
        for n, d in f.items()
        if isinstance(d, h5py.Dataset)
        and n not in known
        and not n.endswith("coordinates")
        and d.size == size
        and d.dtype.kind == "f"
    )
    return known + others


def load_direction_tensors(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """The exact direction tensors of a LossLab surface: ``{"x": {name: array}, "y": {...}}``."""
    with _open(Path(path), "r") as f:
        if "directions" not in f:
            raise RunFileError(f"{path}: no 'directions' group (not written by LossLab)")
        groups = h5safe.group(f, "directions", path).items()
        return {axis: {n: h5safe.read(group, n, path) for n in group} for axis, group in groups}


def _open(path: Path, mode: str) -> h5py.File:
    if not Path(path).is_file():
        raise RunFileError(f"{path}: no such surface file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        if mode == "r" and "lock" in str(exc).lower():
            # A job is still writing this surface (it holds the lock); its rows are flushed as they
            # complete, so a viewer may read the points computed so far.
            try:
                return h5py.File(path, mode, locking=False)
            except OSError:
                pass
        raise RunFileError(f"{path}: cannot open as an HDF5 surface file ({exc})") from exc


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
            value = [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
