"""Reading a run file back: config, checkpoints as models, the exact evaluation tensors."""

from __future__ import annotations

import os
import socket
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor, nn

from engine.config import ExperimentConfig, from_toml_text
from engine.errors import LossLabError, RunFileError
from engine.storage import h5safe
from engine.storage.runfile import RUN_FORMAT, read_tensors, refused_pickle

Epoch = int | str
DATA_ATTRS = ("input_shape", "num_outputs", "train_size", "test_size")


def _open_run(path: Path) -> h5py.File:
    if not path.is_file():
        raise RunFileError(f"'{path}': run file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        if "lock" not in str(exc).lower():
            raise RunFileError(f"'{path}': not a readable HDF5 file ({exc})") from exc
        try:  # a training process is writing an epoch right now; what it flushed before is readable
            f = h5py.File(path, "r", locking=False)
        except OSError as again:
            raise RunFileError(f"'{path}': not a readable HDF5 file ({again})") from again
    if f.attrs.get("format") != RUN_FORMAT:
        f.close()
        raise RunFileError(f"'{path}': not a LossLab run file (attribute format != {RUN_FORMAT!r})")
    return f


class Run:
    """A trained (or partly trained) experiment stored in one HDF5 file."""

    def __init__(self, path: str | Path, *, allow_user_code: bool = False) -> None:
        self.path = Path(path)
        # A run of arch = 'user' names a Python file; rebuilding its model runs that file, so a
        # run file received from elsewhere must not do it unless the user says so.
        self.allow_user_code = allow_user_code
        with _open_run(self.path) as f:
            self._read_header(f)
        try:
            self.config: ExperimentConfig = from_toml_text(self.attrs["config_toml"], str(self.path))
        except LossLabError as exc:
            raise RunFileError(f"'{self.path}': stored experiment is invalid ({exc})") from exc
        if not self.epochs:
            raise RunFileError(f"'{self.path}': holds no checkpoint yet (training stopped before its first "
                               "checkpoint); train again with --overwrite")

    def _read_header(self, f: h5py.File) -> None:
        """Everything but the checkpoints' tensors, each part checked before it is read."""
        path = self.path
        self.attrs: dict[str, Any] = {k: _plain(v) for k, v in f.attrs.items()}
        h5safe.attr(f, "config_toml", path, "the experiment the run was trained with")
        checkpoints = h5safe.group(f, "checkpoints", path, "the model weights per epoch")
        try:
            self.epochs: list[int] = sorted(int(k) for k in checkpoints.keys())
        except ValueError as exc:
            raise RunFileError(f"'{path}': checkpoint names must be epoch numbers ({exc})") from exc
        metrics = h5safe.group(f, "metrics", path, "the per-epoch records")
        self.metrics: dict[str, np.ndarray] = {k: h5safe.read(metrics, k, path) for k in metrics.keys()}
        self.bias: dict[str, Any] = _read_group(f["bias"], path) if "bias" in f else {"kind": "none"}
        data = h5safe.group(f, "data", path, "the data set description")
        classes = h5safe.read(data, "classes", path, kinds="SOU", ndim=1, what="the class names")
        self.dataset_info: dict[str, Any] = {
            "classes": [c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in classes],
            **{k: _plain(v) for k, v in data.attrs.items()},
        }
        for key in DATA_ATTRS:
            h5safe.attr(data, key, path)
        try:
            self.dataset_info["input_shape"] = tuple(int(v) for v in np.ravel(self.dataset_info["input_shape"]))
        except (TypeError, ValueError) as exc:
            raise RunFileError(f"'{path}': attribute 'input_shape' of /data is not a list of sizes") from exc

    @property
    def final_epoch(self) -> int:
        return self.epochs[-1]

    @property
    def status(self) -> str:
        return run_status(self.attrs)

    def resolve_epoch(self, epoch: Epoch) -> int:
        if epoch in ("final", "last", -1):
            return self.final_epoch
        if epoch in ("init", "initial"):
            return self.epochs[0]
        try:
            value = int(epoch)
        except (TypeError, ValueError):
            value = None
        if value not in self.epochs:
            raise RunFileError(f"'{self.path}': checkpoint {epoch!r} not stored; stored epochs are "
                               f"{', '.join(map(str, self.epochs))} (or 'final')")
        return value

    def state_dict(self, epoch: Epoch = "final") -> dict[str, Tensor]:
        number = self.resolve_epoch(epoch)
        with _open_run(self.path) as f:
            return read_tensors(h5safe.group(f, f"checkpoints/{number}", self.path), self.path)

    def build_model(self) -> nn.Module:
        from engine.models import build_model

        shape = tuple(int(v) for v in self.dataset_info["input_shape"])
        return build_model(self.config.model, shape, int(self.dataset_info["num_outputs"]),
                           allow_user_code=self.allow_user_code)

    def model(self, epoch: Epoch = "final") -> nn.Module:
        """A fresh model with checkpoint ``epoch`` loaded, in eval mode."""
        model = self.build_model()
        load_checkpoint(model, self.state_dict(epoch), f"{self.path} epoch {epoch}")
        return model.eval()

    @cached_property
    def _dataset(self):
        from engine.bias import prepare_data

        dataset, _ = prepare_data(self.config)
        if dataset.fingerprint != self.dataset_info.get("train_fingerprint"):
            raise RunFileError(
                f"'{self.path}': the training data rebuilt from data.source = {self.config.data.source!r} "
                "differs from the data this run was trained on (files changed or moved?)"
            )
        return dataset

    def tensors(self, split: str) -> tuple[Tensor, Tensor]:
        """The exact ``(inputs, labels)`` used in training: ``train`` is biased, ``test`` is clean."""
        if split not in ("train", "test"):
            raise RunFileError(f"split = {split!r}; expected 'train' or 'test'")
        return self._dataset.split(split)

    @property
    def classes(self) -> list[str]:
        return list(self.dataset_info["classes"])


INTERRUPTED = "interrupted (the training process ended before finishing); continue it with --resume"


def run_status(attrs: dict[str, Any]) -> str:
    """The stored status, except that "running" by a process that no longer exists is "interrupted"."""
    status = str(attrs.get("status", "unknown"))
    if status != "running":
        return status
    pid, host = attrs.get("pid"), attrs.get("host")
    if pid is None or host != socket.gethostname():
        return "running (or interrupted: it was trained on another machine)" if pid is not None else status
    return status if _process_alive(int(pid)) else INTERRUPTED


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def load_checkpoint(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load ``state`` into ``model`` or explain which keys or shapes do not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unknown tensors (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            details.append(f"shape of {k} is {tuple(state[k].shape)}, model expects {tuple(own[k].shape)}")
        raise RunFileError(f"'{source}': checkpoint does not fit the model: " + "; ".join(details))
    model.load_state_dict(state)


def load_state_file(path: str | Path) -> dict[str, Tensor]:
    """A user's ``.pt`` state dict, read with ``weights_only=True`` (never runs code)."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"'{path}': checkpoint file not found")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # unpickling errors come in many types
        raise refused_pickle(path, "PyTorch state dict", exc) from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise RunFileError(f"'{path}': expected a dict of tensors (a model state_dict)")
    return state


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_group(group: h5py.Group, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {k: _plain(v) for k, v in group.attrs.items()}
    for key in group.keys():
        out[key] = h5safe.read(group, key, path)
    return out


def load_run(path: str | Path, *, allow_user_code: bool = False) -> Run:
    """Open a LossLab run file; ``allow_user_code`` lets a run of arch = 'user' import its model file."""
    return Run(path, allow_user_code=allow_user_code)
