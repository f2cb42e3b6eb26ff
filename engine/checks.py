"""Checks across settings (model x data x loss x options), run before any work starts.

Each key alone is checked where it is declared (``engine.config``); this module refuses
combinations that cannot work or that would silently ignore a setting, e.g. ``skip = false``
on an MLP or ``loss = "mae"`` on classification data. :func:`check_experiment` needs only the
configuration; :func:`check_data` runs once the data set's task and shape are known;
:func:`check_grid_size` bounds user-chosen surface sizes by the memory of this machine.

The configuration is duck-typed (this module sits below ``engine.config`` in the layers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.device import available_memory, check_thread_count
from engine.errors import ConfigError

RESNETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "sharesnet20")
CONV_NETS = (*RESNETS, "vgg9", "densenet", "mobilenetv2")
CLASSIFICATION_SOURCES = ("digits", "mnist1d", "cifar10", "mnist", "fashion-mnist")
IMAGE_SIZE = {"digits": 8, "mnist": 28, "fashion-mnist": 28, "cifar10": 32}
REGRESSION_LOSSES = ("mae",)


@dataclass(frozen=True)
class Applies:
    """``key`` has an effect only when ``when(cfg)``; ``where`` says when, in the user's words."""

    key: str
    when: Callable[[Any], bool]
    where: str


# A model setting that differs from its default where it has no effect is refused: it was meant to
# change the model, and training without it would silently differ from what the file asks for.
# (Schedule and optimiser values that wait for another choice stay allowed: forms keep them when
# the user switches, e.g. step_size while schedule = 'cosine'.) When the setting's declaration in
# engine.config carries an ``applies`` rule, that rule decides; these are for the ones without.
STRICT_KEYS = ("model.skip", "model.taaf", "model.activation", "model.width", "model.user", "model.user_kwargs")
FALLBACK = {
    "model.skip": Applies("model.skip", lambda c: c.model.arch in RESNETS, "arch is a ResNet"),
    "model.taaf": Applies("model.taaf", lambda c: c.model.arch == "mlp", "arch = 'mlp'"),
    "model.activation": Applies("model.activation", lambda c: c.model.arch == "mlp",
                                "arch = 'mlp' (conv nets use their published activations)"),
    "model.width": Applies("model.width", lambda c: c.model.arch in CONV_NETS, "arch is a convolutional net"),
    "model.user": Applies("model.user", lambda c: c.model.arch == "user", "arch = 'user'"),
    "model.user_kwargs": Applies("model.user_kwargs", lambda c: c.model.arch == "user", "arch = 'user'"),
}


def check_experiment(cfg: Any, source: str = "") -> None:
    """Refuse combinations of an experiment's settings that cannot work or would be ignored."""
    defaults = type(cfg)()
    for key in STRICT_KEYS:
        value = _get(cfg, key)
        if value == _get(defaults, key):
            continue
        applies, where = _applies(cfg, key)
        if not applies:
            raise ConfigError(key, value, f"no {key} (it only applies when {where}); "
                              f"remove it or change the setting it depends on", source)
    _check_required(cfg, source)
    _check_loss_and_data(cfg, source)
    check_thread_count(cfg.train.threads, "train.threads", source)


FOLDER_SOURCES = ("cifar10", "mnist", "fashion-mnist", "tensors")


def _check_required(cfg: Any, source: str) -> None:
    """Settings that one choice makes necessary."""
    bias, data, model, train = cfg.bias, cfg.data, cfg.model, cfg.train
    if bias.kind in ("size", "noise") and bias.target_class < 0:
        raise ConfigError("bias.class", bias.target_class, f"a class index >= 0 for bias.kind = {bias.kind!r}",
                          source)
    if bias.kind != "none" and bias.fraction <= 0:
        raise ConfigError("bias.fraction", bias.fraction, "a fraction in (0, 1] when a bias is set", source)
    if data.source in FOLDER_SOURCES and not data.root:
        what = "a .npz file" if data.source == "tensors" else "a data folder"
        raise ConfigError("data.root", data.root, f"{what} for data.source = {data.source!r}", source)
    if model.arch == "user" and ":" not in model.user:
        raise ConfigError("model.user", model.user, "'path/to/file.py:ClassName' for arch = 'user'", source)
    if train.schedule == "milestones" and not train.milestones:
        raise ConfigError("train.milestones", train.milestones, "a non-empty list for schedule = 'milestones'",
                          source)
    if train.loss in REGRESSION_LOSSES and bias.kind == "mislabel":
        raise ConfigError("bias.kind", bias.kind, "a classification loss (ce/mse) for mislabel bias", source)


def _applies(cfg: Any, dotted: str) -> tuple[bool, str]:
    """The declared ``applies`` rule of a setting (engine.schema), else this module's fallback."""
    *sections, name = dotted.split(".")
    section = _get(cfg, ".".join(sections))
    field = next((f for f in dataclasses.fields(section) if f.name == name), None)
    rule = field.metadata.get("applies") if field is not None else None
    if rule is None:
        fallback = FALLBACK[dotted]
        return fallback.when(cfg), fallback.where
    values = {f.metadata.get("toml_key", f.name): getattr(section, f.name) for f in dataclasses.fields(section)}
    return bool(rule(values)), str(getattr(rule, "text", "another setting allows it"))


def _check_loss_and_data(cfg: Any, source: str) -> None:
    data, loss = cfg.data, cfg.train.loss
    if loss in REGRESSION_LOSSES and data.source in CLASSIFICATION_SOURCES:
        raise ConfigError("train.loss", loss, f"'ce' or 'mse' for the classification data set "
                          f"data.source = {data.source!r} ('mae' needs float regression targets)", source)
    size = IMAGE_SIZE.get(data.source)
    if data.augment and (data.source == "mnist1d" or (size is not None and size < 32)):
        what = "1D signals" if data.source == "mnist1d" else f"{size}x{size} images"
        raise ConfigError("data.augment", True, f"false for data.source = {data.source!r} ({what}); random crop "
                          "+ flip is for 32x32 images such as cifar10", source)


def check_data(cfg: Any, task: str, input_shape: tuple[int, ...], where: str = "") -> None:
    """Checks that need the loaded data: the loss fits the targets, the model fits the inputs."""
    loss, arch = cfg.train.loss, cfg.model.arch
    data_name = where or f"data.source = {cfg.data.source!r}"
    if task == "classification" and loss in REGRESSION_LOSSES:
        raise ConfigError("train.loss", loss, f"'ce' or 'mse': {data_name} holds integer class labels")
    if task == "regression" and loss not in REGRESSION_LOSSES:
        raise ConfigError("train.loss", loss, f"'mae': {data_name} holds float regression targets")
    if task == "regression" and cfg.bias.kind != "none":
        raise ConfigError("bias.kind", cfg.bias.kind, f"'none': {data_name} has no classes to bias")
    if arch in CONV_NETS and len(input_shape) != 3:
        raise ConfigError("model.arch", arch, f"'mlp' (or 'user'): {data_name} holds feature vectors "
                          f"of shape {tuple(input_shape)}, conv nets need images (C,H,W)")
    if cfg.data.augment and len(input_shape) != 3:
        raise ConfigError("data.augment", True, f"false: {data_name} holds no images")


SURFACE_BYTES_PER_VALUE = 8 * 3  # float64 values, held by the writer, the file's creation and a viewer
MEMORY_SHARE = 0.5  # the rest is for the model, the data and everything else running here


def check_grid_size(nx: int, ny: int | None, average: int = 1, metrics: int = 4, source: str = "") -> None:
    """Refuse a surface whose arrays cannot fit in this machine's memory, before anything starts."""
    points = nx * (ny or 1) * max(average, 1)
    needed = points * (metrics + 1) * SURFACE_BYTES_PER_VALUE
    budget = int(available_memory() * MEMORY_SHARE)
    if needed > budget:
        limit = budget // ((metrics + 1) * SURFACE_BYTES_PER_VALUE)
        key = "y" if ny else "x"
        shown = f"{nx} x {ny}" if ny else str(nx)
        times = f" x {average} directions" if average > 1 else ""
        raise ConfigError(key, f"{shown} points{times}", f"at most {limit:,} points in all on this machine "
                          f"({_gib(needed)} needed, {_gib(budget)} of memory usable)", source)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, "target_class" if part == "class" else part)
    return obj


def check_surface_options(options: Any, source: str = "") -> None:
    """Limits of a surface job derived from this machine: grid size (memory), threads and workers (cores)."""
    y = options.y_coordinates
    check_grid_size(len(options.x_coordinates), None if y is None else len(y), options.average_count,
                    source=source)
    for key in ("threads", "workers"):
        check_thread_count(int(getattr(options, key, 0) or 0), key, source)
