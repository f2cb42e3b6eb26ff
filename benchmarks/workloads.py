"""Models, data and the three ways of evaluating a grid point that the benchmark compares.

* LossLab: :class:`engine.landscape.PointEvaluator` as ``compute_surface`` builds it.
* bare: a batched eager fp32 forward pass of the same model over the same tensors, in
  ``torch.inference_mode`` (no loss, no parameter update): the hardware limit of direct evaluation.
* naive: a simplified, in-process version of loss-landscape's loop - per point the weights are
  rebuilt and loaded (deep copy + ``load_state_dict``), then a DataLoader over a TensorDataset
  feeds batches normalised on the fly to ``model.eval()`` under ``torch.no_grad``. It has no
  per-image decoding and no DataLoader worker processes; ``bench_speed.py`` reproduces the real
  pipeline in its own process.

All timings are interleaved rounds (every method once per round) so that load from other
processes hits all of them alike; the reported figure is the median round.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from engine.landscape import Directions, ParamVector, PointEvaluator
from engine.landscape.directions.build import random_direction
from engine.models.mlp import MLP
from engine.models.resnet import CifarResNet

CPU = torch.device("cpu")
NAIVE_BATCH = 128  # loss-landscape's default batch size


@dataclass
class Workload:
    """A model at a trained-looking state, raw (unnormalised) inputs and their normalisation."""

    name: str
    model: nn.Module
    raw: Tensor
    labels: Tensor
    mean: float
    std: float
    points_per_round: int

    @property
    def inputs(self) -> Tensor:
        """Normalised once, as LossLab stores evaluation tensors."""
        return (self.raw - self.mean) / self.std


def resnet_workload(depth: int, images: int, points: int, seed: int = 0) -> Workload:
    torch.manual_seed(seed)
    model = with_trained_batch_norm(CifarResNet(depth, 10), seed)
    g = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (images, 3, 32, 32), generator=g).float()  # 8-bit pixels, like CIFAR
    labels = torch.randint(0, 10, (images,), generator=g)
    return Workload(f"ResNet-{depth}, {images} x 3x32x32", model, raw, labels, 120.0, 64.0, points)


def small_resnet_workload(images: int = 96, seed: int = 0) -> Workload:
    """ResNet-20 on 3x16x16 images: ~15 ms a point here, so a 33x33 grid takes ~15-20 s."""
    torch.manual_seed(seed)
    model = with_trained_batch_norm(CifarResNet(20, 10), seed)
    g = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (images, 3, 16, 16), generator=g).float()
    labels = torch.randint(0, 10, (images,), generator=g)
    return Workload(f"ResNet-20, {images} x 3x16x16", model, raw, labels, 120.0, 64.0, 1)


def mlp_workload(points: int, hidden: tuple[int, ...] = (128, 128), seed: int = 0) -> Workload:
    torch.manual_seed(seed)
    bunch = load_digits()
    raw = torch.tensor(bunch.data, dtype=torch.float32)  # 0..16
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    model = MLP((64,), hidden, 10).eval()
    width = "-".join(str(h) for h in hidden)
    return Workload(f"MLP 64-{width}-10, {len(raw)} digits", model, raw, labels, 8.0, 8.0, points)


def pixels_mlp_workload(points: int, samples: int = 2000, seed: int = 0) -> Workload:
    """An MLP on 784 8-bit 'pixels' (random, MNIST-sized): its first layer holds most of the arithmetic."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (samples, 784), generator=g).float()
    labels = torch.randint(0, 10, (samples,), generator=g)
    model = MLP((784,), (128, 128), 10).eval()
    return Workload(f"MLP 784-128-128-10, {samples} x 784 pixels", model, raw, labels, 128.0, 64.0, points)


def with_trained_batch_norm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine BN parameters away from their initial 0/1 values."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model.eval()


def plane(model: nn.Module) -> Directions:
    origin = ParamVector.from_module(model)
    x = random_direction(origin, 0, 0, "filter", "biasbn")
    return Directions("random", origin, [x], random_direction(origin, 0, 1, "filter", "biasbn"))


def grid_points(count: int) -> list[tuple[float, float, int]]:
    return [(0.05 * (k % 7) - 0.15, 0.04 * (k % 5) - 0.1, 0) for k in range(count)]


# ---- the three evaluators: each returns a function that evaluates `points` grid points -----------
def losslab(w: Workload, **options: object) -> tuple[Callable[[list], object], PointEvaluator, float]:
    start = time.perf_counter()
    evaluator = PointEvaluator(
        copy.deepcopy(w.model), plane(w.model), {"test": (w.inputs, w.labels)}, "ce", CPU, **options
    )
    return evaluator.evaluate_many, evaluator, time.perf_counter() - start


def bare(w: Workload, batch_size: int) -> Callable[[list], object]:
    model, inputs = copy.deepcopy(w.model).eval(), w.inputs.contiguous()
    for p in model.parameters():
        p.requires_grad_(False)

    def run(points: list) -> None:
        with torch.inference_mode():
            for _ in points:
                for start in range(0, len(inputs), batch_size):
                    model(inputs[start : start + batch_size])

    return run


def naive(w: Workload) -> Callable[[list], object]:
    """One loss-landscape ``crunch`` step per point: set weights, then ``eval_loss`` over a DataLoader."""
    net, directions = copy.deepcopy(w.model), plane(w.model)
    base = copy.deepcopy(net.state_dict())
    loader = DataLoader(TensorDataset(w.raw, w.labels), batch_size=NAIVE_BATCH, shuffle=False)
    criterion = nn.CrossEntropyLoss()

    def run(points: list) -> list[tuple[float, float]]:
        results = []
        for alpha, beta, _ in points:
            state = copy.deepcopy(base)
            for k in directions.origin:
                state[k] = directions.origin[k] + alpha * directions.x[k] + beta * directions.y[k]
            net.load_state_dict(state)
            net.eval()
            total_loss, correct, total = 0.0, 0, 0
            with torch.no_grad():
                for raw, targets in loader:
                    inputs = (raw - w.mean) / w.std  # the per-batch transform
                    outputs = net(inputs)
                    total_loss += criterion(outputs, targets).item() * len(targets)
                    correct += int(outputs.max(1)[1].eq(targets).sum().item())
                    total += len(targets)
            results.append((total_loss / total, 100.0 * correct / total))
        return results

    return run


def interleaved(methods: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each method over ``rounds`` rounds, every method once per round (after a warm-up)."""
    for run in methods.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
