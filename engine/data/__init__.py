"""Data sets as tensors, preprocessed once: source -> (bias) -> normalisation -> tensors.

Bias is injected on the raw [0, 1] training arrays (the bias-landscape study adds its noise there), before
normalisation, and never on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from engine.config import DataConfig
from engine.data.sources import (
    RawData,
    load_cifar10_folder,
    load_digits_split,
    load_idx_folder,
    load_mnist1d,
    load_tensors_npz,
)


@dataclass
class Dataset:
    """Evaluation-ready tensors: inputs float32 ``(N, C, H, W)`` or ``(N, D)``; labels int64."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: list[str]

    @property
    def fingerprint(self) -> str:
        """A hash of the training tensors: proves a run's data can be rebuilt identically."""
        import hashlib

        digest = hashlib.sha1()
        for tensor in (self.x_train, self.y_train):
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def task(self) -> str:
        return "regression" if self.y_train.dtype.is_floating_point else "classification"

    @property
    def num_outputs(self) -> int:
        if self.task == "classification":
            return len(self.classes)
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        if name == "train":
            return self.x_train, self.y_train
        if name == "test":
            return self.x_test, self.y_test
        raise ValueError(f"split = {name!r}; expected 'train' or 'test'")

    def to(self, device: torch.device | str) -> Dataset:
        return replace(self, **{k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test")})


def load_raw(cfg: DataConfig, seed: int) -> RawData:
    """The unnormalised arrays of ``cfg.source`` (limits applied), before any bias."""
    seed = seed if cfg.split_seed < 0 else cfg.split_seed
    if cfg.source == "digits":
        raw = load_digits_split(cfg.test_fraction, seed)
    elif cfg.source == "mnist1d":
        raw = load_mnist1d(seed)
    elif cfg.source == "cifar10":
        raw = load_cifar10_folder(cfg.root)
    elif cfg.source in ("mnist", "fashion-mnist"):
        raw = load_idx_folder(cfg.root, cfg.source)
    else:
        raw = load_tensors_npz(cfg.root)
    return _limit(raw, cfg.train_limit, cfg.test_limit)


def _limit(raw: RawData, train_limit: int, test_limit: int) -> RawData:
    tr = slice(None, train_limit or None)
    te = slice(None, test_limit or None)
    return RawData(raw.x_train[tr], raw.y_train[tr], raw.x_test[te], raw.y_test[te], raw.classes)


def _normalize(train: np.ndarray, test: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    if mode == "none":
        return train, test
    if mode == "demean":
        # Seed 000: subtract each sample's own mean (after scaling to [0, 1]).
        axes = tuple(range(1, train.ndim))
        return train - train.mean(axis=axes, keepdims=True), test - test.mean(axis=axes, keepdims=True)
    stat_axes = (0, 2, 3) if train.ndim == 4 else (0,)
    if mode == "unit":
        lo = train.min(axis=stat_axes, keepdims=True)
        span = np.maximum(train.max(axis=stat_axes, keepdims=True) - lo, 1e-12)
        return (train - lo) / span, (test - lo) / span
    mean = train.mean(axis=stat_axes, keepdims=True)
    std = np.maximum(train.std(axis=stat_axes, keepdims=True), 1e-6)
    return (train - mean) / std, (test - mean) / std


def to_dataset(raw: RawData, cfg: DataConfig) -> Dataset:
    """Normalise with training-split statistics and convert to tensors."""
    x_train, x_test = _normalize(raw.x_train.astype(np.float32), raw.x_test.astype(np.float32), cfg.normalize)
    return Dataset(
        name=cfg.source,
        x_train=torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)),
        y_train=torch.from_numpy(np.ascontiguousarray(raw.y_train)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32)),
        y_test=torch.from_numpy(np.ascontiguousarray(raw.y_test)),
        classes=list(raw.classes),
    )


def load_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """The unbiased data set of ``cfg`` as tensors."""
    return to_dataset(load_raw(cfg, seed), cfg)


def augment_batch(images: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Random crop (zero padding) + horizontal flip, applied on the device to a whole batch."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device="cpu")
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device="cpu")
    flip = torch.rand(n, generator=generator, device="cpu") < 0.5
    rows = (torch.arange(h)[None, :] + dy[:, None]).to(images.device)
    cols = (torch.arange(w)[None, :] + dx[:, None])
    cols = torch.where(flip[:, None], cols.flip(1), cols).to(images.device)
    batch = torch.arange(n, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


__all__ = ["Dataset", "RawData", "augment_batch", "load_dataset", "load_raw", "to_dataset"]
