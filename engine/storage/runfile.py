"""One HDF5 file per experiment: config, data fingerprint, bias record, checkpoints, metrics.

Layout::

    attrs: format="losslab-run", config_toml, status, provenance (versions, device, seed)
    data/           classes, input_shape, task, train_fingerprint
    bias/           indices, original_labels, new_labels, counts_before, counts_after (+ attrs)
    checkpoints/<epoch>/<state_dict key>
    metrics/<name>  per-epoch arrays indexed by epoch (0 = initialisation)
    distance/<k>/<parameter name>  snapshots pushed away from by the distance regulariser
    resume          optimiser / scheduler / RNG state of the last checkpoint (torch.save bytes,
                    read back with weights_only=True so the file cannot run code)

The writer opens the file only while it writes, so a killed process leaves at most the
epoch in flight unwritten.
"""

from __future__ import annotations

import io
import os
import platform
import re
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from engine.bias import BiasRecord
from engine.errors import LossLabError, OutputError, RunFileError, UnsafeFileError, is_disk_full

RUN_FORMAT = "losslab-run"


def provenance(device: str, seed: int) -> dict[str, str]:
    import sklearn

    from engine.version import __version__

    return {
        "losslab_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "seed": str(seed),
    }


def state_to_bytes(state: Any) -> np.ndarray:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def state_from_bytes(data: np.ndarray, source: str) -> Any:
    try:
        return torch.load(io.BytesIO(data.tobytes()), weights_only=True, map_location="cpu")
    except Exception as exc:  # pickle/unpickling errors come in many types
        raise refused_pickle(source, "stored training state", exc) from exc


def refused_pickle(source: str | Path, what: str, exc: BaseException) -> LossLabError:
    """Why torch refused a pickle, in our words: never torch's advice to set weights_only=False."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global[: ]+['\"]?([\w.]+)", text, re.IGNORECASE)
    if found:
        return UnsafeFileError(f"'{source}': not a safe {what}: it asks to build {found.group(1)}, which plain "
                               "tensors never need (it could run code); refused, nothing from it was executed")
    reason = next((line.strip() for line in text.splitlines()
                   if line.strip() and "weights_only" not in line and "torch.load" not in line), type(exc).__name__)
    return RunFileError(f"'{source}': {what} is unreadable ({reason})")


def read_tensors(group: h5py.Group, path: str | Path = "") -> dict[str, torch.Tensor]:
    """A checkpoint group as a state dict (0-d datasets such as BN step counters included); each
    dataset's dtype and size are checked before it is read."""
    from engine.storage import h5safe

    source = path or group.file.filename
    return {key: torch.from_numpy(np.array(h5safe.read(group, key, source))) for key in group.keys()}


HDF5_MARGIN = 256 * 1024  # metadata, chunk indexes and free-space bookkeeping around each write
RUNNING = "running"


class RunWriter:
    """Appends to a run file; every method opens, writes, flushes and closes.

    Before each write the free disk space is compared with what the write needs: HDF5 cannot
    recover from a failed write (it may crash the process when the file is closed), so a write
    that would not fit is refused before the file is opened and every stored epoch stays valid.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.disk_full = False

    @contextmanager
    def _open(self, mode: str = "a", nbytes: int = 0):
        self._ensure_space(nbytes)
        try:
            with h5py.File(self.path, mode) as f:
                yield f
                f.flush()
        except (OSError, RuntimeError) as exc:
            if not is_disk_full(exc):
                raise
            self.disk_full = True
            raise OutputError(f"'{self.path}': cannot write: the disk is full; {self.kept()}") from exc

    def _ensure_space(self, nbytes: int) -> None:
        needed = int(nbytes * 1.25) + HDF5_MARGIN
        folder = self.path.parent if str(self.path.parent) else Path(".")
        free = shutil.disk_usage(folder).free
        if free < needed:
            self.disk_full = True
            raise OutputError(f"'{self.path}': cannot write: the disk is full ({_mib(free)} free, the next "
                              f"record needs about {_mib(needed)}); {self.kept()}")

    def kept(self) -> str:
        """What a reader finds in the file now, for messages after a refused write."""
        try:
            with h5py.File(self.path, "r") as f:
                epochs = sorted(int(k) for k in f["checkpoints"].keys())
        except (OSError, KeyError, ValueError):
            return "nothing was written"
        if not epochs:
            return "no checkpoint was written yet"
        return (f"the file keeps checkpoints up to epoch {epochs[-1]}; free some space and continue with "
                "--resume")

    def create(self, config_toml: str, meta: dict[str, str], data_info: dict[str, Any]) -> None:
        with self._open("w") as f:
            f.attrs["format"] = RUN_FORMAT
            f.attrs["config_toml"] = config_toml
            _mark_running(f)
            for key, value in meta.items():
                f.attrs[key] = str(value)
            data = f.create_group("data")
            data.create_dataset("classes", data=np.array(data_info["classes"], dtype="S"))
            data.attrs["input_shape"] = np.array(data_info["input_shape"], dtype=np.int64)
            data.attrs["task"] = data_info["task"]
            data.attrs["num_outputs"] = data_info["num_outputs"]
            data.attrs["train_fingerprint"] = data_info["train_fingerprint"]
            data.attrs["train_size"] = data_info["train_size"]
            data.attrs["test_size"] = data_info["test_size"]
            for name in ("checkpoints", "metrics", "distance"):
                f.create_group(name)

    def write_bias(self, record: BiasRecord) -> None:
        with self._open() as f:
            group = f.require_group("bias")
            for key in ("kind", "fraction", "target_class", "variance", "noise_seed"):
                group.attrs[key] = getattr(record, key)
            for key in ("indices", "original_labels", "new_labels", "counts_before", "counts_after"):
                group.create_dataset(key, data=np.asarray(getattr(record, key), dtype=np.int64))

    def write_epoch(self, epoch: int, metrics: dict[str, Any], state: dict[str, torch.Tensor] | None,
                    resume_state: Any | None) -> None:
        """Metrics of ``epoch`` and, optionally, its checkpoint and the state needed to resume."""
        resume_bytes = None if resume_state is None else state_to_bytes(resume_state)
        nbytes = sum(int(np.asarray(v).nbytes) for v in metrics.values()) * 4
        nbytes += sum(t.numel() * t.element_size() for t in (state or {}).values())
        nbytes += 0 if resume_bytes is None else resume_bytes.nbytes
        with self._open(nbytes=nbytes) as f:
            for name, value in metrics.items():
                _write_metric(f["metrics"], name, epoch, np.asarray(value, dtype=np.float64))
            if state is not None:
                group_name = f"checkpoints/{epoch}"
                if group_name in f:
                    del f[group_name]
                group = f.create_group(group_name)
                for key, tensor in state.items():
                    group.create_dataset(key, data=tensor.detach().cpu().numpy())
            if resume_bytes is not None:
                if "resume" in f:
                    del f["resume"]
                f.create_dataset("resume", data=resume_bytes)
                f["resume"].attrs["epoch"] = epoch

    def write_snapshots(self, snapshots: list[dict[str, torch.Tensor]], epochs: list[int]) -> None:
        nbytes = sum(t.numel() * t.element_size() for s in snapshots for t in s.values())
        with self._open(nbytes=nbytes) as f:
            del f["distance"]
            group = f.create_group("distance")
            group.attrs["epochs"] = np.array(epochs, dtype=np.int64)
            for k, snapshot in enumerate(snapshots):
                sub = group.create_group(str(k))
                for key, tensor in snapshot.items():
                    sub.create_dataset(key, data=tensor.detach().cpu().numpy())

    def truncate_to(self, epoch: int) -> None:
        """Forget metrics and checkpoints after ``epoch`` (resume after a crash)."""
        with self._open() as f:
            for name in list(f["metrics"].keys()):
                data = f["metrics"][name][: epoch + 1]
                del f["metrics"][name]
                f["metrics"].create_dataset(name, data=data, maxshape=(None, *data.shape[1:]), chunks=True)
            for key in list(f["checkpoints"].keys()):
                if int(key) > epoch:
                    del f["checkpoints"][key]

    def set_status(self, status: str) -> None:
        if self.disk_full:
            return  # a full disk must not be written again; readers see the process is gone
        with self._open() as f:
            if status == RUNNING:
                _mark_running(f)
            else:
                f.attrs["status"] = status


def _mark_running(f: h5py.File) -> None:
    """Status "running" with the process that trains, so readers can tell a dead one from a live one."""
    f.attrs["status"] = RUNNING
    f.attrs["pid"] = os.getpid()
    f.attrs["host"] = socket.gethostname()


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _write_metric(group: h5py.Group, name: str, epoch: int, value: np.ndarray) -> None:
    if name not in group:
        group.create_dataset(name, shape=(0, *value.shape), maxshape=(None, *value.shape),
                             dtype=np.float64, chunks=True, fillvalue=np.nan)
    dataset = group[name]
    if dataset.shape[0] <= epoch:
        dataset.resize(epoch + 1, axis=0)
    dataset[epoch] = value
