"""MobileNetV2 (Sandler et al. 2018) in its usual CIFAR form.

Inverted residual blocks: a 1x1 expansion conv (t times the channels), a 3x3 depthwise conv
and a linear 1x1 projection, with ReLU6 after the first two; the input is added back when
stride is 1 and channels match. For 32x32 inputs the stem conv and the second stage use
stride 1 instead of 2, so the map shrinks 32 -> 4 rather than to 1. Channels scale with
``width``; global average pooling lets 8x8 and 28x28 inputs through as well.
"""

from __future__ import annotations

from torch import Tensor, nn

# (expansion t, output channels c, blocks n, stride of the first block s); stage 2's stride is
# 1 here instead of the ImageNet 2.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def conv_bn(in_planes: int, out_planes: int, kernel: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(in_planes, out_planes, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_planes),
    ]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_planes * expansion
        layers = conv_bn(in_planes, hidden, 1) if expansion != 1 else []
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += conv_bn(hidden, out_planes, 1, relu=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_planes == out_planes

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    def __init__(self, in_channels: int, num_outputs: int, width: int = 1) -> None:
        super().__init__()
        planes = STEM_CHANNELS * width
        layers = conv_bn(in_channels, planes, 3)
        for expansion, channels, blocks, stride in STAGES:
            for b in range(blocks):
                layers.append(InvertedResidual(planes, channels * width, expansion, stride if b == 0 else 1))
                planes = channels * width
        layers += conv_bn(planes, LAST_CHANNELS * width, 1)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(LAST_CHANNELS * width, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.pool(self.features(x)).flatten(1))
