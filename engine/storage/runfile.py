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
import platform
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from engine.bias import BiasRecord
from engine.errors import RunFileError

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
        raise RunFileError(f"'{source}': stored training state is unreadable or unsafe ({exc})") from exc


def read_tensors(group: h5py.Group) -> dict[str, torch.Tensor]:
    """A checkpoint group as a state dict (0-d datasets such as BN step counters included)."""
    return {key: torch.from_numpy(np.array(group[key][()])) for key in group.keys()}


class RunWriter:
    """Appends to a run file; every method opens, writes, flushes and closes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _open(self, mode: str = "a"):
        with h5py.File(self.path, mode) as f:
            yield f
            f.flush()

    def create(self, config_toml: str, meta: dict[str, str], data_info: dict[str, Any]) -> None:
        with self._open("w") as f:
            f.attrs["format"] = RUN_FORMAT
            f.attrs["config_toml"] = config_toml
            f.attrs["status"] = "running"
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
        with self._open() as f:
            for name, value in metrics.items():
                _write_metric(f["metrics"], name, epoch, np.asarray(value, dtype=np.float64))
            if state is not None:
                group_name = f"checkpoints/{epoch}"
                if group_name in f:
                    del f[group_name]
                group = f.create_group(group_name)
                for key, tensor in state.items():
                    group.create_dataset(key, data=tensor.detach().cpu().numpy())
            if resume_state is not None:
                if "resume" in f:
                    del f["resume"]
                f.create_dataset("resume", data=state_to_bytes(resume_state))
                f["resume"].attrs["epoch"] = epoch

    def write_snapshots(self, snapshots: list[dict[str, torch.Tensor]], epochs: list[int]) -> None:
        with self._open() as f:
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
        with self._open() as f:
            f.attrs["status"] = status


def _write_metric(group: h5py.Group, name: str, epoch: int, value: np.ndarray) -> None:
    if name not in group:
        group.create_dataset(name, shape=(0, *value.shape), maxshape=(None, *value.shape),
                             dtype=np.float64, chunks=True, fillvalue=np.nan)
    dataset = group[name]
    if dataset.shape[0] <= epoch:
        dataset.resize(epoch + 1, axis=0)
    dataset[epoch] = value
