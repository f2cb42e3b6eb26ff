"""The curve file ``C.h5`` written by ``losslab connect``.

Layout::

    attrs: format="losslab-curve", status, run_a, run_b, epoch_a, epoch_b, fingerprint_a/b,
           parameter_names, epochs_done, every ConnectOptions field, barrier_*, *_test_acc
    bends/<k>/<parameter name>   the trained bends (k = 0 .. bends - 1)
    training/loss                mean training loss of each finished epoch
    resume                       optimiser and RNG state after the last finished epoch
                                 (torch.save bytes, read with weights_only=True)
    t, curve/<metric>, line/<metric>   evaluation along the curve and the straight line
    ensemble/t                   the t of the sampled ensemble members

Every write builds the whole file next to ``C.h5`` and moves it into place (``os.replace``), so a
process killed at any moment leaves the previous complete file: resuming starts from its last
finished epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.connect.options import ConnectOptions
from engine.errors import RunFileError, output_error
from engine.landscape.directions.curve import CURVE_FORMAT
from engine.storage import h5safe

METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
PATHS = ("curve", "line")


@dataclass
class CurveRecord:
    """Everything a curve file holds, in memory."""

    options: ConnectOptions
    run_a: str
    run_b: str
    epoch_a: int
    epoch_b: int
    fingerprint_a: str
    fingerprint_b: str
    names: list[str]
    bends: list[dict[str, np.ndarray]]
    epochs_done: int = 0
    train_loss: list[float] = field(default_factory=list)
    resume: np.ndarray | None = None  # uint8 bytes of the optimiser/RNG state
    status: str = "running"
    t: np.ndarray | None = None
    values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # path -> metric -> (len(t),)
    summary: dict[str, Any] = field(default_factory=dict)  # barriers, ensemble accuracies, bn_updated
    path: Path | None = None

    @property
    def trained(self) -> bool:
        return self.epochs_done >= self.options.epochs

    @property
    def evaluated(self) -> bool:
        return self.t is not None and all(p in self.values for p in PATHS)


def write_curve(record: CurveRecord, path: str | Path) -> None:
    """Write ``record`` to ``path`` atomically (a partial file never replaces a complete one)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with h5py.File(partial, "w") as f:
            _write(f, record)
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise output_error(path, exc, "the last complete epoch stays in the file") from exc
    record.path = path


def _write(f: h5py.File, r: CurveRecord) -> None:
    f.attrs.update({"format": CURVE_FORMAT, "status": r.status, "run_a": r.run_a, "run_b": r.run_b,
                    "epoch_a": r.epoch_a, "epoch_b": r.epoch_b, "fingerprint_a": r.fingerprint_a,
                    "fingerprint_b": r.fingerprint_b, "epochs_done": r.epochs_done})
    f.attrs["parameter_names"] = np.array(r.names, dtype=h5py.string_dtype())
    f.attrs.update(r.options.to_attrs())
    f.attrs.update({k: v for k, v in r.summary.items() if k != "ensemble_t"})
    for k, bend in enumerate(r.bends):
        group = f.create_group(f"bends/{k}")
        for name in r.names:
            group.create_dataset(name, data=bend[name])
    f.create_dataset("training/loss", data=np.asarray(r.train_loss, dtype=np.float64))
    if r.resume is not None:
        f.create_dataset("resume", data=r.resume)
    if r.t is not None:
        f.create_dataset("t", data=r.t)
        for path_name, metrics in r.values.items():
            for metric, values in metrics.items():
                f.create_dataset(f"{path_name}/{metric}", data=values)
        if "ensemble_t" in r.summary:
            f.create_dataset("ensemble/t", data=np.asarray(r.summary["ensemble_t"], dtype=np.float64))


def load_curve(path: str | Path) -> CurveRecord:
    """Read a curve file back; every member is checked (type, rank, size) before it is read, and
    errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"'{path}': curve file not found")
    try:
        with h5py.File(path, "r") as f:
            if h5safe.plain(f.attrs.get("format")) != CURVE_FORMAT:
                raise RunFileError(f"'{path}': not a LossLab curve file (attribute format != {CURVE_FORMAT!r})")
            return _read(f, path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise RunFileError(f"'{path}': the curve file is damaged or incomplete ({exc})") from exc


def _read(f: h5py.File, path: Path) -> CurveRecord:
    attrs = {k: _plain(v) for k, v in f.attrs.items()}
    options = ConnectOptions.from_attrs(attrs)
    names = [str(n) for n in _required(f, "parameter_names", path)]
    bends = [{n: h5safe.read(f, f"bends/{k}/{n}", path, what="a bend of the curve") for n in names}
             for k in range(options.bends)]
    resume = h5safe.read(f, "resume", path, kinds="u", ndim=1) if "resume" in f else None
    record = CurveRecord(options, _required(f, "run_a", path), _required(f, "run_b", path),
                         int(_required(f, "epoch_a", path)), int(_required(f, "epoch_b", path)),
                         _required(f, "fingerprint_a", path), _required(f, "fingerprint_b", path), names, bends,
                         int(_required(f, "epochs_done", path)),
                         list(h5safe.read(f, "training/loss", path, ndim=1)), resume,
                         _required(f, "status", path), path=path)
    if "t" in f:
        record.t = h5safe.read(f, "t", path, ndim=1)
        record.values = {p: {m: h5safe.read(f, f"{p}/{m}", path, ndim=1, size=len(record.t))
                             for m in h5safe.group(f, p, path).keys()} for p in PATHS if p in f}
    known = set(options.to_attrs()) | {"format", "status", "run_a", "run_b", "epoch_a", "epoch_b",
                                       "fingerprint_a", "fingerprint_b", "epochs_done", "parameter_names"}
    record.summary = {k: v for k, v in attrs.items() if k not in known}
    if "ensemble" in f:
        record.summary["ensemble_t"] = h5safe.read(f, "ensemble/t", path, ndim=1)
    return record


def _required(f: h5py.File, name: str, path: Path) -> Any:
    value = h5safe.attr(f, name, path, "written by losslab connect")
    return _plain(value) if isinstance(value, np.ndarray) else value


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
