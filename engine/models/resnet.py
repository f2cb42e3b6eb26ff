"""CIFAR ResNets (He et al. 2016, section 4.2) as laid out in tomgoldstein/loss-landscape.

A 3x3 stem conv with 16 channels, then three stages of ``n = (depth - 2) / 6`` basic blocks
with 16, 32 and 64 channels (times ``width``); the second and third stages halve the spatial
size. Where a block changes shape its shortcut is a 1x1 conv + BN projection (option B).
``skip=False`` drops every shortcut, giving Li et al.'s "no-short" nets whose landscapes
turn chaotic with depth. Global average pooling makes any image size work, down to 8x8.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

STAGE_CHANNELS = (16, 32, 64)
DEPTHS = (20, 32, 44, 56, 110)

BlockFactory = Callable[[int, int, int, bool], nn.Module]


def conv3x3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


def projection(in_planes: int, planes: int, stride: int) -> nn.Sequential:
    """Option-B shortcut: matches channels and spatial size of the block's output."""
    return nn.Sequential(
        nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(planes),
    )


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the shortcut (unless ``skip`` is off), then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, skip: bool = True) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module | None = None
        if skip:
            reshapes = stride != 1 or in_planes != planes
            self.shortcut = projection(in_planes, planes, stride) if reshapes else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    """The three-stage CIFAR ResNet; ``block`` builds each residual block."""

    def __init__(
        self,
        depth: int,
        num_outputs: int,
        in_channels: int = 3,
        width: int = 1,
        skip: bool = True,
        block: BlockFactory = BasicBlock,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth}")
        blocks_per_stage = (depth - 2) // 6
        planes = STAGE_CHANNELS[0] * width
        self.conv1 = conv3x3(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        stages = []
        for index, channels in enumerate(STAGE_CHANNELS):
            stride = 1 if index == 0 else 2
            stage = []
            for b in range(blocks_per_stage):
                stage.append(block(planes, channels * width, stride if b == 0 else 1, skip))
                planes = channels * width
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.pool(out).flatten(1))
