"""Small models, data and training trajectories for the landscape tests.

Run as a script it computes a surface of a fixed model, printing one line per written
batch; the kill -9 resume test starts it in a subprocess.
"""

from __future__ import annotations

import copy
import sys

import torch
from sklearn.datasets import load_digits
from torch import Tensor, nn

from engine.landscape import ModelSource, SurfaceOptions, compute_surface

Data = dict[str, tuple[Tensor, Tensor]]


def digits(n_train: int = 500, n_test: int = 250) -> Data:
    """Real 8x8 digits scaled to [0, 1], as flat vectors."""
    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    return {
        "train": (x[:n_train], y[:n_train]),
        "test": (x[n_train : n_train + n_test], y[n_train : n_train + n_test]),
    }


def digit_images(n_train: int = 200, n_test: int = 100) -> Data:
    return {s: (x.view(-1, 1, 8, 8), y) for s, (x, y) in digits(n_train, n_test).items()}


def mlp(seed: int = 0, hidden: int = 32, inputs: int = 64) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )


class ConvBN(nn.Module):
    """A tiny convnet with batch norm, for filter normalisation and ``states`` directions."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def train_states(
    model: nn.Module, data: Data, epochs: int = 4, lr: float = 0.3, seed: int = 0
) -> dict[int, dict[str, Tensor]]:
    """Plain SGD; the state after each epoch (0 = initialisation)."""
    torch.manual_seed(seed)
    x, y = data["train"]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    states = {0: copy.deepcopy(model.state_dict())}
    for epoch in range(1, epochs + 1):
        model.train()
        for index in torch.randperm(len(x)).split(50):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
        states[epoch] = copy.deepcopy(model.state_dict())
    model.eval()
    return states


def trained_mlp_source(seed: int = 0, hidden: int = 32, epochs: int = 4, name: str = "mlp.h5") -> ModelSource:
    data = digits()
    model = mlp(seed, hidden)
    states = train_states(model, data, epochs, seed=seed)
    return ModelSource.from_module(model, data, "ce", states, name=name)


def wide_mlp_source() -> ModelSource:
    """Slow enough per point (all 1,797 digits through 64-256-256-10) to be killed mid-surface."""
    x, y = (torch.cat(parts) for parts in zip(*digits(1297, 500).values()))
    model = mlp(seed=3, hidden=256)
    return ModelSource.from_module(model, {"train": (x, y), "test": (x[:500], y[:500])}, "ce", name="wide")


KILL_TEST_OPTIONS = SurfaceOptions(x="-1:1:15", y="-0.5:0.5:11", split="both", candidates=4)


def main(out: str) -> None:
    torch.set_num_threads(1)

    def report(event) -> None:
        if event.payload:
            print(f"written {event.done}", flush=True)

    compute_surface(wide_mlp_source(), KILL_TEST_OPTIONS, out, on_event=report)
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
