"""Training-set bias injection (the bias-landscape study, Mohammadi and Rana 2021, §3.3), seeded and
recorded sample by sample.

- ``mislabel``: per class, ``round(fraction * n_c)`` samples get a label drawn uniformly from
  the other classes, so the selection is uniform over classes and counts stay roughly equal.
- ``size``: ``round(fraction * n_c)`` samples of one class are removed.
- ``noise``: ``round(fraction * n_c)`` samples of one class get Gaussian noise added whose mean is
  that class's mean sample (pixel-wise) and whose variance is ``variance``.

The test split is never touched. Indices refer to the unbiased training split's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.config import BiasConfig, ExperimentConfig
from engine.data import Dataset, load_raw, to_dataset
from engine.data.sources import RawData
from engine.errors import ConfigError


@dataclass
class BiasRecord:
    """Exactly what was changed, to be stored in the run file and shown to the user."""

    kind: str
    fraction: float
    target_class: int
    variance: float
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    original_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    new_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    noise_seed: int = -1
    counts_before: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    counts_after: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def summary(self, classes: list[str]) -> str:
        if self.kind == "none":
            return "no bias"
        target = f" on class {classes[self.target_class]!r}" if self.target_class >= 0 else ""
        verb = {"mislabel": "relabelled", "size": "removed", "noise": "noised"}[self.kind]
        return f"{self.kind}{target}: {len(self.indices)} training samples {verb} (fraction {self.fraction:g})"


def _bias_rng(seed: int) -> np.random.Generator:
    # A stream of its own so that changing the bias never shifts model init or batch order.
    return np.random.default_rng(np.random.SeedSequence([seed, 0xB1A5]))


def _class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def _pick(rng: np.random.Generator, members: np.ndarray, fraction: float) -> np.ndarray:
    count = int(round(fraction * len(members)))
    return np.sort(rng.choice(members, size=count, replace=False)) if count else members[:0]


def _check(cfg: BiasConfig, raw: RawData) -> int:
    if raw.y_train.dtype.kind == "f":
        raise ConfigError("bias.kind", cfg.kind, "'none' for regression targets (bias needs class labels)")
    num_classes = len(raw.classes)
    if cfg.kind in ("size", "noise") and not 0 <= cfg.target_class < num_classes:
        raise ConfigError("bias.class", cfg.target_class, f"a class index in [0, {num_classes - 1}]")
    if cfg.kind == "mislabel" and num_classes < 2:
        raise ConfigError("bias.kind", cfg.kind, "a data set with at least two classes")
    return num_classes


def _mislabel(raw: RawData, cfg: BiasConfig, rng: np.random.Generator, k: int) -> tuple[RawData, dict]:
    chosen = np.concatenate([_pick(rng, np.flatnonzero(raw.y_train == c), cfg.fraction) for c in range(k)])
    chosen = np.sort(chosen)
    original = raw.y_train[chosen]
    # Shift by 1..k-1 so the new label is uniform over the *other* classes.
    new = (original + rng.integers(1, k, size=len(chosen))) % k
    labels = raw.y_train.copy()
    labels[chosen] = new
    biased = RawData(raw.x_train, labels, raw.x_test, raw.y_test, raw.classes)
    return biased, {"indices": chosen, "original_labels": original, "new_labels": new}


def _size(raw: RawData, cfg: BiasConfig, rng: np.random.Generator) -> tuple[RawData, dict]:
    removed = _pick(rng, np.flatnonzero(raw.y_train == cfg.target_class), cfg.fraction)
    keep = np.setdiff1d(np.arange(len(raw.y_train)), removed)
    biased = RawData(raw.x_train[keep], raw.y_train[keep], raw.x_test, raw.y_test, raw.classes)
    return biased, {"indices": removed, "original_labels": raw.y_train[removed]}


def _noise(raw: RawData, cfg: BiasConfig, rng: np.random.Generator) -> tuple[RawData, dict]:
    members = np.flatnonzero(raw.y_train == cfg.target_class)
    chosen = _pick(rng, members, cfg.fraction)
    noise_seed = int(rng.integers(0, 2**31 - 1))
    class_mean = raw.x_train[members].mean(axis=0)
    noise_rng = np.random.default_rng(noise_seed)
    noise = noise_rng.normal(0.0, np.sqrt(cfg.variance), size=(len(chosen), *class_mean.shape)) + class_mean
    images = raw.x_train.copy()
    images[chosen] += noise.astype(images.dtype)
    biased = RawData(images, raw.y_train, raw.x_test, raw.y_test, raw.classes)
    return biased, {"indices": chosen, "original_labels": raw.y_train[chosen], "noise_seed": noise_seed}


def apply_bias(raw: RawData, cfg: BiasConfig, seed: int) -> tuple[RawData, BiasRecord]:
    """The biased training split (test split untouched) and the record of every change."""
    record = BiasRecord(cfg.kind, cfg.fraction, cfg.target_class, cfg.variance)
    if cfg.kind == "none":
        if raw.y_train.dtype.kind != "f":
            record.counts_before = record.counts_after = _class_counts(raw.y_train, len(raw.classes))
        return raw, record
    k = _check(cfg, raw)
    rng = _bias_rng(seed)
    if cfg.kind == "mislabel":
        biased, changes = _mislabel(raw, cfg, rng, k)
    elif cfg.kind == "size":
        biased, changes = _size(raw, cfg, rng)
    else:
        biased, changes = _noise(raw, cfg, rng)
    for name, value in changes.items():
        setattr(record, name, value)
    record.counts_before = _class_counts(raw.y_train, k)
    record.counts_after = _class_counts(biased.y_train, k)
    return biased, record


def preview_bias(cfg: ExperimentConfig) -> dict:
    """Per-class counts before/after the configured bias, for the experiment form."""

    raw = load_raw(cfg.data, cfg.seed)
    _, record = apply_bias(raw, cfg.bias, cfg.seed)
    return {
        "classes": list(raw.classes),
        "counts_before": record.counts_before.tolist(),
        "counts_after": record.counts_after.tolist(),
        "changed": int(len(record.indices)),
        "summary": record.summary(raw.classes),
    }


def prepare_data(cfg: ExperimentConfig) -> tuple[Dataset, BiasRecord]:
    """The biased training split, the clean test split, and the record of the bias."""
    raw = load_raw(cfg.data, cfg.seed)
    biased, record = apply_bias(raw, cfg.bias, cfg.seed)
    dataset = to_dataset(biased, cfg.data)
    if cfg.data.augment and len(dataset.input_shape) != 3:
        raise ConfigError("data.augment", True, "false for feature-vector data (crop+flip needs images)")
    return dataset, record
