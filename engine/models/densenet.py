"""A small CIFAR DenseNet-BC (Huang et al. 2017): three dense blocks joined by transitions.

Each dense layer is BN-ReLU-1x1 conv (4k channels)-BN-ReLU-3x3 conv (k channels) and its output
is concatenated to its input; with depth L there are (L - 4) / 6 such layers per block. A
transition (BN-ReLU-1x1 conv halving the channels, 2x2 average pool) follows the first two
blocks; its pool is left out once the map is down to 1 pixel. Growth k = 12 times ``width``.
The default depth 40 gives about 0.19 M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GROWTH = 12
COMPRESSION = 0.5


class DenseLayer(nn.Module):
    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], dim=1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, pool: bool) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)
        self.pool: nn.Module = nn.AvgPool2d(2, ceil_mode=True) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv(F.relu(self.bn(x))))


class DenseNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, width: int = 1,
                 depth: int = 40) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n + 4 with n >= 1, got {depth}")
        layers_per_block = (depth - 4) // 6
        growth = GROWTH * width
        in_channels, height, breadth = input_shape
        planes = 2 * growth
        stages: list[nn.Module] = [nn.Conv2d(in_channels, planes, kernel_size=3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                stages.append(DenseLayer(planes, growth))
                planes += growth
            if block < 2:
                pool = min(height, breadth) >= 2
                if pool:
                    height, breadth = -(-height // 2), -(-breadth // 2)
                out_planes = int(planes * COMPRESSION)
                stages.append(Transition(planes, out_planes, pool))
                planes = out_planes
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.features(x)))
        return self.linear(self.pool(out).flatten(1))
