"""ShaResNet-20: a CIFAR ResNet whose blocks reuse one conv for both of their 3x3 layers.

Seed 000 (section 3.1.2, after Boulch 2017, "ShaResNet") shares "the weight parameters between
layers of a residual block if both layers operate at the same spatial scale": every block whose
input and output have the same shape applies a single 3x3 conv twice, each time followed by its
own BatchNorm. Only the first block of stages 2 and 3 (which halves the size and doubles the
channels) keeps two separate convs. This reproduces the bias-landscape study's Table 1 exactly: 7 of ResNet-20's
19 convs disappear, 36 % of the parameters (273,066 -> 173,754 in its Keras count, which adds
conv biases; 272,474 -> 173,402 here).

The shared conv is registered once (as ``conv1``), so it is a single entry in
``named_parameters()`` and ``state_dict()``; ``conv2`` is the same module.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.resnet import BasicBlock, CifarResNet, conv3x3


class SharedConvBlock(nn.Module):
    """A basic block (same channels in and out, stride 1) that applies one conv twice."""

    def __init__(self, planes: int, skip: bool = True) -> None:
        super().__init__()
        self.conv1 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module | None = nn.Identity() if skip else None

    @property
    def conv2(self) -> nn.Conv2d:
        """The second layer is the first conv again (not registered twice)."""
        return self.conv1

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


def sharing_block(in_planes: int, planes: int, stride: int, skip: bool) -> nn.Module:
    """Share the convs where both operate at the same scale; otherwise a plain block."""
    if in_planes == planes and stride == 1:
        return SharedConvBlock(planes, skip)
    return BasicBlock(in_planes, planes, stride, skip)


def sharesnet(depth: int, num_outputs: int, in_channels: int = 3, width: int = 1,
              skip: bool = True) -> CifarResNet:
    return CifarResNet(depth, num_outputs, in_channels, width, skip, block=sharing_block)
