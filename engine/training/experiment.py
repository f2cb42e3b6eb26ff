"""From an experiment config to ready tensors, a device and a model."""

from __future__ import annotations

import torch

from engine.bias import BiasRecord, apply_bias
from engine.config import ExperimentConfig
from engine.data import Dataset, load_raw, to_dataset
from engine.errors import ConfigError


def prepare_data(cfg: ExperimentConfig) -> tuple[Dataset, BiasRecord]:
    """The biased training split, the clean test split, and the record of the bias."""
    raw = load_raw(cfg.data, cfg.seed)
    biased, record = apply_bias(raw, cfg.bias, cfg.seed)
    dataset = to_dataset(biased, cfg.data)
    if cfg.data.augment and len(dataset.input_shape) != 3:
        raise ConfigError("data.augment", True, "false for feature-vector data (crop+flip needs images)")
    return dataset, record


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", requested, "'cpu' or 'auto' (no CUDA device is available here)")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ConfigError("device", requested, "'auto', 'cpu' or 'cuda[:N]'")
    return torch.device(requested)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


def choose_threads(requested: int, parameter_count: int) -> int:
    """Small nets on few cores run faster on one thread (synchronisation dominates)."""
    if requested > 0:
        return requested
    cores = torch.get_num_threads()
    return 1 if parameter_count < 2_000_000 else cores
