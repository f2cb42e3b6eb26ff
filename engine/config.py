"""The experiment: one typed config object, read from TOML and validated once.

Every section is a :class:`engine.schema.Settings` dataclass whose fields declare their own
rules (choices, ranges, help, form label); :func:`from_dict` checks every key against them and
refuses anything else with a :class:`ConfigError` naming the file, the key, the value and
what is allowed. Rules across fields live in :func:`_check_combinations` and ``engine.checks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.checks import check_experiment
from engine.errors import ConfigError
from engine.schema import MISSING, Rule, Settings, equals, setting, setting_named

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


SOURCE = "experiment"
CONV_ARCH = Rule(lambda v: v.get("arch") not in ("mlp", "user"), "arch is a convolutional net")
RESNET_ARCH = Rule(lambda v: str(v.get("arch", "")).startswith(("resnet", "sharesnet")), "arch is a ResNet")


def _rule(default: Any = MISSING, *, toml_key: str | None = None, **rules: Any) -> Any:
    """One declared setting (see engine.schema.setting); ``toml_key`` when TOML names it differently."""
    return setting(default, key=toml_key, **rules)


@dataclass
class DataConfig(Settings):
    SOURCE = SOURCE
    PREFIX = "data."

    source: str = _rule("digits", choices=DATA_SOURCES)
    root: str = _rule("", help="folder (cifar10/mnist/fashion-mnist) or .npz file (tensors)", label="Folder / file",
                      applies=equals("source", "cifar10", "mnist", "fashion-mnist", "tensors"))
    normalize: str = _rule("standard", choices=NORMALIZATIONS, label="Normalisation")
    augment: bool = _rule(False, help="random crop + horizontal flip, 32x32 images only")
    test_fraction: float = _rule(0.25, min=0.05, max=0.9, help="digits only: held-out share",
                                 applies=equals("source", "digits"))
    train_limit: int = _rule(0, min=0, help="use only the first N training samples (0 = all)",
                             label="Train samples (0 = all)")
    test_limit: int = _rule(0, min=0, help="use only the first N test samples (0 = all)",
                            label="Test samples (0 = all)")
    split_seed: int = _rule(-1, min=-1, help="digits/mnist1d: seed of the train/test split (-1 = the experiment seed); "
                          "runs with one split_seed and different seeds share their data")


@dataclass
class BiasConfig(Settings):
    SOURCE = SOURCE
    PREFIX = "bias."

    kind: str = _rule("none", choices=BIAS_KINDS, label="Kind")
    fraction: float = _rule(0.0, min=0.0, max=1.0, applies=~equals("kind", "none"))
    target_class: int = _rule(-1, min=-1, toml_key="class", help="class for size/noise bias", label="Class",
                              applies=equals("kind", "size", "noise"))
    variance: float = _rule(0.02, min=0.0, help="variance of the Gaussian noise bias",
                            applies=equals("kind", "noise"))


@dataclass
class ModelConfig(Settings):
    SOURCE = SOURCE
    PREFIX = "model."

    arch: str = _rule("mlp", choices=ARCHS, label="Architecture")
    skip: bool = _rule(True, help="ResNets: False gives Li et al.'s no-shortcut variant", label="Skip connections",
                       applies=RESNET_ARCH)
    width: int = _rule(1, min=1, max=16, help="channel width multiplier", applies=CONV_ARCH)
    hidden: list[int] = _rule(factory=lambda: [64, 64], min=1, help="MLP hidden layer sizes", label="MLP hidden layers",
                              applies=equals("arch", "mlp"))
    activation: str = _rule("relu", choices=ACTIVATIONS, help="MLP hidden-layer activation",
                            applies=equals("arch", "mlp"))
    taaf: bool = _rule(False, help="MLP: per-neuron trainable alpha*f(beta*y+gamma)+delta", label="TAAF activations",
                       applies=equals("arch", "mlp"))
    user: str = _rule("", help="arch='user': path/to/file.py:ClassName (runs that file's code)", label="Model file",
                      applies=equals("arch", "user"))
    user_kwargs: dict[str, Any] = _rule(factory=dict, label="Model arguments", applies=equals("arch", "user"))


@dataclass
class DistanceConfig(Settings):
    SOURCE = SOURCE
    PREFIX = "train.distance."

    strength: float = _rule(0.0, min=0.0, label="Distance strength")
    sigma: float = _rule(1.0, min=1e-12)
    start_epoch: int = _rule(10, min=0, label="Start epoch")
    every: int = _rule(0, min=0, help="take a new snapshot every k epochs (0 = once)", label="Snapshot every")


@dataclass
class TrainConfig(Settings):
    SOURCE = SOURCE
    PREFIX = "train."

    optimizer: str = _rule("sgd", choices=OPTIMIZERS)
    lr: float = _rule(0.05, min=1e-12, max=10.0, label="Learning rate")
    momentum: float = _rule(0.9, min=0.0, max=0.9999, applies=equals("optimizer", "sgd"))
    nesterov: bool = _rule(False, applies=equals("optimizer", "sgd"))
    weight_decay: float = _rule(5e-4, min=0.0, max=1.0)
    batch_size: int = _rule(128, min=1)
    epochs: int = _rule(10, min=0)
    loss: str = _rule("ce", choices=LOSSES)
    schedule: str = _rule("none", choices=SCHEDULES)
    milestones: list[int] = _rule(factory=list, min=1, applies=equals("schedule", "milestones"))
    gamma: float = _rule(0.1, min=0.0, max=1.0, help="LR factor at milestones/steps",
                         applies=equals("schedule", "milestones", "step"))
    step_size: int = _rule(30, min=1, help="schedule='step': epochs between LR drops",
                           applies=equals("schedule", "step"))
    restart_period: int = _rule(10, min=1, help="warm_restarts: epochs of the first cycle",
                                applies=equals("schedule", "warm_restarts"))
    restart_mult: int = _rule(1, min=1, help="warm_restarts: cycle length multiplier",
                              applies=equals("schedule", "warm_restarts"))
    checkpoint_every: int = _rule(1, min=1)
    threads: int = _rule(0, min=0, help="torch CPU threads (0 = choose automatically)")
    distance: DistanceConfig = field(default_factory=DistanceConfig)


@dataclass
class ExperimentConfig(Settings):
    SOURCE = SOURCE
    PREFIX = ""

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

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml())


def _check_combinations(cfg: ExperimentConfig, source: str = "") -> ExperimentConfig:
    if cfg.train.milestones != sorted(cfg.train.milestones):
        raise ConfigError("train.milestones", cfg.train.milestones, "epochs in increasing order", source)
    check_experiment(cfg, source)  # every rule across settings lives in engine.checks
    return cfg


def from_dict(data: dict[str, Any], source: str = "") -> ExperimentConfig:
    """Build and validate an experiment from a plain dict (e.g. parsed TOML)."""
    cfg = ExperimentConfig.from_dict(data, source)
    return _check_combinations(cfg, source)


def from_toml_text(text: str, source: str = "<text>") -> ExperimentConfig:
    return _check_combinations(ExperimentConfig.from_toml(text, source), source)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("<file>", str(path), "an existing experiment .toml file", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("<file>", str(path), f"a UTF-8 TOML text file (byte {exc.start} is not UTF-8)",
                          str(path)) from None
    return from_toml_text(text, str(path))


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
    return dict(setting_named(section, name).meta)
