"""Shared fixtures. Tests run on one torch thread: on 2 cores that is faster for small nets and
leaves a core for the Qt event loop in GUI tests."""

from __future__ import annotations

import os

import pytest
import torch

if not os.environ.get("DISPLAY"):
    # Off-screen renders without X use EGL + Mesa.
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
torch.set_num_threads(1)

# torch's compiler stack must load before the first OpenGL context (Mesa's LLVM vs triton's).
from app.worker import preload_engine_libraries  # noqa: E402

preload_engine_libraries()


@pytest.fixture
def quick_config():
    """A tiny digits experiment that trains in about a second."""
    from engine.config import from_dict

    def make(**sections):
        base = {
            "name": "quick", "seed": 0,
            "data": {"source": "digits", "train_limit": 400, "test_limit": 200},
            "model": {"arch": "mlp", "hidden": [32]},
            "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 64, "epochs": 3, "threads": 1},
        }
        for key, value in sections.items():
            base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
        return from_dict(base)

    return make


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A small trained digits run shared by read-only tests."""
    from engine.config import from_dict
    from engine.training import train

    cfg = from_dict({
        "name": "shared-run", "seed": 1,
        "data": {"source": "digits", "train_limit": 600, "test_limit": 300},
        "bias": {"kind": "mislabel", "fraction": 0.3},
        "model": {"arch": "mlp", "hidden": [32, 32]},
        "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 64, "epochs": 4, "threads": 1},
    })
    return train(cfg, tmp_path_factory.mktemp("runs") / "shared.h5")
