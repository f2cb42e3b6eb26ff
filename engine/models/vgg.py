"""VGG-9 as in tomgoldstein/loss-landscape: 7 convs and 2 fully connected layers.

Convs (3x3, with bias, each followed by BN and ReLU) in the pattern
64, 64, pool, 128, 128, pool, 256, 256, 256, pool; then a hidden linear layer of 256 units
with BN and ReLU, and the output layer. Channel counts scale with ``width``. Pools are left
out once the feature map is down to 1 pixel, so 8x8 digits still work; the first linear layer
is sized for whatever map the input leaves (4x4 for 32x32 and 28x28 inputs).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

POOL = "M"
VGG9_LAYERS: tuple[int | str, ...] = (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL)


class VGG9(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_outputs: int, width: int = 1) -> None:
        super().__init__()
        channels, height, breadth = input_shape
        layers: list[nn.Module] = []
        for item in VGG9_LAYERS:
            if item == POOL:
                if min(height, breadth) >= 2:
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                    height, breadth = math.ceil(height / 2), math.ceil(breadth / 2)
                continue
            planes = int(item) * width
            layers += [nn.Conv2d(channels, planes, kernel_size=3, padding=1),
                       nn.BatchNorm2d(planes), nn.ReLU(inplace=True)]
            channels = planes
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(channels * height * breadth, channels),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(channels, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.fc(self.features(x).flatten(1)))
