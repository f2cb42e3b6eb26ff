"""arch = 'user': a model class from the user's own Python file.

Building such a model RUNS THE CODE IN THAT FILE. That is an explicit opt-in: the experiment
names the file in ``model.user = "path/to/file.py:ClassName"`` (relative paths are taken from
the current folder), and callers that rebuild models from files they did not write (e.g. run
files) can refuse with ``allow_user_code=False``.

The class is built as ``ClassName(**model.user_kwargs)``; if its constructor has parameters
called ``input_shape`` or ``num_outputs`` that the kwargs leave out, they get the data set's
values. A dry forward pass on zeros then checks that the model returns (N, num_outputs) logits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from engine.config import ModelConfig
from engine.errors import ConfigError

KEY = "model.user"


def split_reference(reference: str) -> tuple[Path, str]:
    """``"dir/file.py:Net"`` -> (path, "Net"); the last colon splits, so "C:\\x.py:Net" works."""
    path, sep, name = reference.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ConfigError(KEY, reference, "'path/to/file.py:ClassName'")
    return Path(path).expanduser(), name


def import_file(path: Path, reference: str) -> ModuleType:
    if not path.is_file():
        raise ConfigError(KEY, reference, f"an existing Python file (no file at {path.resolve()})")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_name = f"losslab_user_model_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(KEY, reference, f"a Python source file (cannot import {resolved})")
    module = importlib.util.module_from_spec(spec)
    # Registered so that classes defined there (dataclasses, pickling) can find their module.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise ConfigError(KEY, reference, f"a file that imports cleanly; it raised "
                          f"{type(exc).__name__}: {exc}") from exc
    return module


def find_class(module: ModuleType, name: str, reference: str) -> type[nn.Module]:
    cls = getattr(module, name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module))
        listing = ", ".join(found) if found else "none"
        raise ConfigError(KEY, reference,
                          f"a class named {name!r} in that file (nn.Module classes there: {listing})")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(KEY, reference, f"a torch.nn.Module subclass; {name} is a {type(cls).__name__}")
    return cls


def constructor_kwargs(cls: type, kwargs: dict[str, Any], input_shape: tuple[int, ...],
                       num_outputs: int) -> dict[str, Any]:
    """The user's kwargs plus input_shape/num_outputs where the constructor asks for them."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return dict(kwargs)
    offered = {"input_shape": input_shape, "num_outputs": num_outputs}
    extra = {k: v for k, v in offered.items() if k in params and k not in kwargs}
    return {**kwargs, **extra}


def check_outputs(model: nn.Module, reference: str, input_shape: tuple[int, ...], num_outputs: int) -> None:
    """One forward pass on zeros in eval mode, leaving the RNG and the model's mode as they were."""
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as exc:
        batch = ", ".join(map(str, input_shape))
        raise ConfigError(KEY, reference, f"a model that accepts a batch of shape (N, {batch}); "
                          f"it raised {type(exc).__name__}: {exc}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_outputs):
        found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(KEY, reference, f"a forward() returning logits of shape (N, {num_outputs}); "
                          f"for N = 2 it returned {found}")


def build_user_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    path, name = split_reference(cfg.user)
    cls = find_class(import_file(path, cfg.user), name, cfg.user)
    kwargs = constructor_kwargs(cls, cfg.user_kwargs, input_shape, num_outputs)
    try:
        model = cls(**kwargs)
    except Exception as exc:
        raise ConfigError(KEY, cfg.user, f"a class that {name}(**model.user_kwargs) can build with "
                          f"model.user_kwargs = {cfg.user_kwargs!r}; "
                          f"it raised {type(exc).__name__}: {exc}") from exc
    check_outputs(model, cfg.user, input_shape, num_outputs)
    return model
