"""Fully connected networks: any input is flattened, hidden layers use one activation.

The output layer is linear (logits or regression values). With ``taaf`` every hidden
activation becomes a per-neuron TAAF (see :mod:`engine.models.taaf`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from engine.models.taaf import TAAF

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}") from None


class MLP(nn.Module):
    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], num_outputs: int,
                 activation: str = "relu", taaf: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = math.prod(input_shape)
        for neurons in hidden:
            act = make_activation(activation)
            layers += [nn.Linear(features, neurons), TAAF(act, neurons) if taaf else act]
            features = neurons
        layers.append(nn.Linear(features, num_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
