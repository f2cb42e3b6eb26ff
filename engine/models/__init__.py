"""The model zoo: every architecture LossLab can train, built from a ModelConfig.

Call ``torch.manual_seed(seed)`` before :func:`build_model` for reproducible weights; the
builders draw all initial values from torch's default generator and nothing else.
Convolutional nets use their published activations (ReLU, ReLU6); ``model.activation`` and
``model.taaf`` apply to the MLP, ``model.skip`` to the ResNets and ShaResNet, and
``model.width`` multiplies the channel counts of every convolutional net.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from engine.config import ModelConfig
from engine.errors import ConfigError
from engine.models.densenet import DenseNet
from engine.models.mlp import MLP
from engine.models.mobilenetv2 import MobileNetV2
from engine.models.resnet import DEPTHS, CifarResNet
from engine.models.sharesnet import sharesnet
from engine.models.user import build_user_model
from engine.models.vgg import VGG9

Shape = tuple[int, ...]
Builder = Callable[[ModelConfig, Shape, int], nn.Module]


def image_shape(cfg: ModelConfig, input_shape: Shape) -> tuple[int, int, int]:
    """Conv nets need (channels, height, width) inputs."""
    if len(input_shape) != 3:
        raise ConfigError("model.arch", cfg.arch,
                          "an image data set (C,H,W) for conv nets; use arch = 'mlp' for feature vectors")
    channels, height, width = input_shape
    return channels, height, width


def _resnet(depth: int) -> Builder:
    def build(cfg: ModelConfig, shape: Shape, outputs: int) -> nn.Module:
        return CifarResNet(depth, outputs, image_shape(cfg, shape)[0], cfg.width, cfg.skip)
    return build


def _sharesnet20(cfg: ModelConfig, shape: Shape, outputs: int) -> nn.Module:
    return sharesnet(20, outputs, image_shape(cfg, shape)[0], cfg.width, cfg.skip)


def _vgg9(cfg: ModelConfig, shape: Shape, outputs: int) -> nn.Module:
    return VGG9(image_shape(cfg, shape), outputs, cfg.width)


def _densenet(cfg: ModelConfig, shape: Shape, outputs: int) -> nn.Module:
    return DenseNet(image_shape(cfg, shape), outputs, cfg.width)


def _mobilenetv2(cfg: ModelConfig, shape: Shape, outputs: int) -> nn.Module:
    return MobileNetV2(image_shape(cfg, shape)[0], outputs, cfg.width)


def _mlp(cfg: ModelConfig, shape: Shape, outputs: int) -> nn.Module:
    return MLP(shape, cfg.hidden, outputs, cfg.activation, cfg.taaf)


_BUILDERS: dict[str, Builder] = {
    "mlp": _mlp,
    **{f"resnet{depth}": _resnet(depth) for depth in DEPTHS},
    "sharesnet20": _sharesnet20,
    "vgg9": _vgg9,
    "densenet": _densenet,
    "mobilenetv2": _mobilenetv2,
    "user": build_user_model,
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int, *,
                allow_user_code: bool = True) -> nn.Module:
    """A freshly initialised model for inputs of ``input_shape`` (without the batch axis).

    ``allow_user_code=False`` refuses arch = 'user', whose build runs the named Python file.
    """
    shape = tuple(int(size) for size in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be non-empty positive sizes, got {input_shape!r}")
    if num_outputs < 1:
        raise ValueError(f"num_outputs must be at least 1, got {num_outputs}")
    builder = _BUILDERS.get(cfg.arch)
    if builder is None:
        raise ConfigError("model.arch", cfg.arch, "one of " + ", ".join(map(repr, MODEL_NAMES)))
    if cfg.arch == "user" and not allow_user_code:
        raise ConfigError("model.user", cfg.user, "explicit permission to run that Python file "
                          "(load_run(..., allow_user_code=True); command line: --allow-user-code)")
    return builder(cfg, shape, num_outputs)


def parameter_count(model: nn.Module) -> int:
    """Number of distinct parameter values (shared tensors counted once; BN buffers not included)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODEL_NAMES", "build_model", "parameter_count"]
