"""Training epoch time: ``engine.training.train`` against a bare PyTorch loop.

Both train the same model (same seed) on the same prepared tensors with the same optimiser,
batch size and thread count. LossLab's figure is the ``seconds`` it reports for the training
part of each epoch; its per-epoch evaluation and checkpoint are timed separately. The bare loop
evaluates its accuracy after each epoch too, untimed, so both start an epoch with the same
cache state. Runs alternate so that outside load hits both alike; epoch 1 is a warm-up.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.bias import prepare_data
from engine.config import ExperimentConfig, from_dict
from engine.events import ProgressEvent
from engine.models import build_model
from engine.training import train


def config(arch: str, epochs: int, hidden: list[int] | None = None) -> ExperimentConfig:
    model = {"arch": arch} | ({"hidden": hidden} if hidden else {})
    return from_dict(
        {
            "name": f"bench-{arch}",
            "seed": 0,
            "data": {"source": "digits"},
            "model": model,
            "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 64, "epochs": epochs, "threads": 1},
        }
    )


def losslab_epochs(cfg: ExperimentConfig, out: Path) -> list[float]:
    seconds: list[float] = []

    def collect(event: ProgressEvent) -> None:
        if "epoch" in event.payload:
            seconds.append(float(event.payload["metrics"]["seconds"]))

    train(cfg, out, device="cpu", overwrite=True, on_event=collect)
    return seconds[1:]


def bare_epochs(cfg: ExperimentConfig) -> list[float]:
    data, _ = prepare_data(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    t = cfg.train
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    x, y = data.x_train, data.y_train
    seconds = []
    for _ in range(t.epochs):
        start = time.perf_counter()
        model.train()
        for index in torch.randperm(len(x), generator=generator).split(t.batch_size):
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
        _evaluate(model, data)  # untimed, as LossLab's per-epoch metrics are
    return seconds[1:]


def _evaluate(model: torch.nn.Module, data) -> None:
    """The test and train accuracy a training script reports after each epoch."""
    model.eval()
    with torch.no_grad():
        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            (model(x).argmax(1) == y).float().mean().item()


def compare(cfg: ExperimentConfig, rounds: int) -> tuple[float, float]:
    """(median LossLab epoch seconds, median bare epoch seconds)."""
    torch.set_num_threads(1)
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            ours += losslab_epochs(cfg, Path(folder) / "run.h5")
            theirs += bare_epochs(cfg)
            torch.set_num_threads(1)
    return statistics.median(ours), statistics.median(theirs)
