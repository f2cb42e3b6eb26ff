"""The experiment: one typed config object, read from TOML and validated once.

Every section is a dataclass whose fields carry their own rules (choices, ranges) in
``metadata``; :func:`from_dict` checks every key against them and refuses anything
else with a :class:`ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from engine.checks import check_experiment
from engine.errors import ConfigError

DATA_SOURCES = ("digits", "mnist1d", "cifar10", "mnist", "fashion-mnist", "tensors")
NORMALIZATIONS = ("standard", "unit", "demean", "none")
BIAS_KINDS = ("none", "mislabel", "size", "noise")
ARCHS = (
    "mlp", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "sharesnet20", "vgg9", "densenet", "mobilenetv2", "user",
)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu", "softplus", "identity")
OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("ce", "mse", "mae")
SCHEDULES = ("none", "milestones", "step", "cosine", "warm_restarts")
DEVICES = ("auto", "cpu", "cuda")


def _rule(default: Any = dataclasses.MISSING, *, factory: Any = None, **rules: Any) -> Any:
    """A dataclass field whose validation rules live in its metadata."""
    if factory is not None:
        return field(default_factory=factory, metadata=rules)
    return field(default=default, metadata=rules)


@dataclass
class DataConfig:
    source: str = _rule("digits", choices=DATA_SOURCES)
    root: str = _rule("", help="folder (cifar10/mnist/fashion-mnist) or .npz file (tensors)")
    normalize: str = _rule("standard", choices=NORMALIZATIONS)
    augment: bool = _rule(False, help="random crop + horizontal flip, 32x32 images only")
    test_fraction: float = _rule(0.25, min=0.05, max=0.9, help="digits only: held-out share")
    train_limit: int = _rule(0, min=0, help="use only the first N training samples (0 = all)")
    test_limit: int = _rule(0, min=0, help="use only the first N test samples (0 = all)")
    split_seed: int = _rule(-1, min=-1, help="digits/mnist1d: seed of the train/test split (-1 = the experiment seed); "
                          "runs with one split_seed and different seeds share their data")


@dataclass
class BiasConfig:
    kind: str = _rule("none", choices=BIAS_KINDS)
    fraction: float = _rule(0.0, min=0.0, max=1.0)
    target_class: int = _rule(-1, min=-1, toml_key="class", help="class for size/noise bias")
    variance: float = _rule(0.02, min=0.0, help="variance of the Gaussian noise bias")


@dataclass
class ModelConfig:
    arch: str = _rule("mlp", choices=ARCHS)
    skip: bool = _rule(True, help="ResNets: False gives Li et al.'s no-shortcut variant")
    width: int = _rule(1, min=1, max=16, help="channel width multiplier")
    hidden: list[int] = _rule(factory=lambda: [64, 64], min=1, help="MLP hidden layer sizes")
    activation: str = _rule("relu", choices=ACTIVATIONS)
    taaf: bool = _rule(False, help="MLP: per-neuron trainable alpha*f(beta*y+gamma)+delta")
    user: str = _rule("", help="arch='user': path/to/file.py:ClassName (runs that file's code)")
    user_kwargs: dict[str, Any] = _rule(factory=dict)


@dataclass
class DistanceConfig:
    strength: float = _rule(0.0, min=0.0)
    sigma: float = _rule(1.0, min=1e-12)
    start_epoch: int = _rule(10, min=0)
    every: int = _rule(0, min=0, help="take a new snapshot every k epochs (0 = once)")


@dataclass
class TrainConfig:
    optimizer: str = _rule("sgd", choices=OPTIMIZERS)
    lr: float = _rule(0.05, min=1e-12, max=10.0)
    momentum: float = _rule(0.9, min=0.0, max=0.9999)
    nesterov: bool = _rule(False)
    weight_decay: float = _rule(5e-4, min=0.0, max=1.0)
    batch_size: int = _rule(128, min=1)
    epochs: int = _rule(10, min=0)
    loss: str = _rule("ce", choices=LOSSES)
    schedule: str = _rule("none", choices=SCHEDULES)
    milestones: list[int] = _rule(factory=list, min=1)
    gamma: float = _rule(0.1, min=0.0, max=1.0, help="LR factor at milestones/steps")
    step_size: int = _rule(30, min=1, help="schedule='step': epochs between LR drops")
    restart_period: int = _rule(10, min=1, help="warm_restarts: epochs of the first cycle")
    restart_mult: int = _rule(1, min=1, help="warm_restarts: cycle length multiplier")
    checkpoint_every: int = _rule(1, min=1)
    threads: int = _rule(0, min=0, help="torch CPU threads (0 = choose automatically)")
    distance: DistanceConfig = field(default_factory=DistanceConfig)


@dataclass
class ExperimentConfig:
    name: str = _rule("experiment")
    seed: int = _rule(0, min=0)
    description: str = _rule("")
    data: DataConfig = field(default_factory=DataConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> ExperimentConfig:
        """Cross-field checks that one key alone cannot express."""
        return _check_combinations(self)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml())


def _toml_key(f: dataclasses.Field) -> str:
    return f.metadata.get("toml_key", f.name)


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[_toml_key(f)] = _to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_scalar(key: str, value: Any, tp: Any, meta: typing.Mapping, source: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false", source)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "an integer", source)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, value, "a number", source)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(key, value, "a finite number", source)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, value, "a string", source)
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(key, value, "one of " + ", ".join(map(repr, meta["choices"])), source)
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ConfigError(key, value, f"a {_type_name(tp)} in {bounds}", source)
    return value


def _check_value(key: str, value: Any, tp: Any, meta: typing.Mapping, source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is list:
        (item_type,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(key, value, f"a list of {_type_name(item_type)}", source)
        return [_check_scalar(f"{key}[{i}]", v, item_type, meta, source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, value, "a table", source)
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type for {key}")
    return _check_scalar(key, value, tp, meta, source)


def _from_dict(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix or "<top>", data, "a table", source)
    hints = typing.get_type_hints(cls)
    fields = {_toml_key(f): f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(key, data[unknown[0]], "one of the keys " + ", ".join(sorted(fields)), source)
    kwargs: dict[str, Any] = {}
    for tkey, value in data.items():
        f = fields[tkey]
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _from_dict(tp, value, f"{prefix}{tkey}.", source)
        else:
            kwargs[f.name] = _check_value(f"{prefix}{tkey}", value, tp, f.metadata, source)
    return cls(**kwargs)


def _check_combinations(cfg: ExperimentConfig, source: str = "") -> ExperimentConfig:
    bias, data, model, train = cfg.bias, cfg.data, cfg.model, cfg.train
    if bias.kind in ("size", "noise") and bias.target_class < 0:
        raise ConfigError("bias.class", bias.target_class,
                          f"a class index >= 0 for bias.kind = {bias.kind!r}", source)
    if bias.kind != "none" and bias.fraction <= 0:
        raise ConfigError("bias.fraction", bias.fraction, "a fraction in (0, 1] when a bias is set", source)
    if data.source in ("cifar10", "mnist", "fashion-mnist", "tensors") and not data.root:
        what = "a .npz file" if data.source == "tensors" else "a data folder"
        raise ConfigError("data.root", data.root, f"{what} for data.source = {data.source!r}", source)
    if model.arch == "user" and ":" not in model.user:
        raise ConfigError("model.user", model.user, "'path/to/file.py:ClassName' for arch = 'user'", source)
    if train.schedule == "milestones" and not train.milestones:
        raise ConfigError("train.milestones", train.milestones, "a non-empty list for schedule = 'milestones'", source)
    if train.milestones != sorted(train.milestones):
        raise ConfigError("train.milestones", train.milestones, "epochs in increasing order", source)
    if train.loss == "mae" and bias.kind == "mislabel":
        raise ConfigError("bias.kind", bias.kind, "a classification loss (ce/mse) for mislabel bias", source)
    check_experiment(cfg, source)
    return cfg


def from_dict(data: dict[str, Any], source: str = "") -> ExperimentConfig:
    """Build and validate an experiment from a plain dict (e.g. parsed TOML)."""
    cfg = _from_dict(ExperimentConfig, data, "", source)
    return _check_combinations(cfg, source)


def from_toml_text(text: str, source: str = "<text>") -> ExperimentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", source, f"valid TOML ({exc})", source) from exc
    return from_dict(data, source)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("<file>", str(path), "an existing experiment .toml file", str(path))
    return from_toml_text(path.read_text(), str(path))


def with_overrides(cfg: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """A copy of ``cfg`` with dotted keys (``"train.epochs"``) replaced, validated again."""
    data = cfg.to_dict()
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(data, "overrides")


def field_help(section: type, name: str) -> dict[str, Any]:
    """The validation rules of one field, for forms in the app."""
    for f in dataclasses.fields(section):
        if f.name == name or _toml_key(f) == name:
            return dict(f.metadata)
    raise KeyError(name)
