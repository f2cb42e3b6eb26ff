"""Transformative adaptive activation functions (TAAF, as in the visualisation thesis, Anuarbekov 2021, section 2.2.2).

Each neuron gets its own trainable alpha, beta, gamma and delta:
``g(y) = alpha * f(beta * y + gamma) + delta``. They start at 1, 1, 0, 0, so a fresh TAAF
network computes exactly what the same network with the plain activation ``f`` computes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TAAF(nn.Module):
    def __init__(self, base: nn.Module, neurons: int) -> None:
        super().__init__()
        self.base = base
        self.alpha = nn.Parameter(torch.ones(neurons))
        self.beta = nn.Parameter(torch.ones(neurons))
        self.gamma = nn.Parameter(torch.zeros(neurons))
        self.delta = nn.Parameter(torch.zeros(neurons))

    def forward(self, y: Tensor) -> Tensor:
        return self.alpha * self.base(self.beta * y + self.gamma) + self.delta

    def extra_repr(self) -> str:
        return f"neurons={self.alpha.numel()}"
