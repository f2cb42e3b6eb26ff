"""Training the bends of a curve (Garipov et al. 2018): each batch draws t ~ U(0, 1) and steps
the loss of the model at theta(t), evaluated with ``torch.func.functional_call`` so that any
architecture works unchanged. After every epoch the bends, the optimiser and every random
state go to the curve file, so a killed job resumes to the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.func import functional_call

from engine.connect.options import ConnectOptions
from engine.connect.setup import CurveParameters, EndPoints
from engine.connect.store import CurveRecord
from engine.data import augment_batch
from engine.errors import TrainingError
from engine.events import CancelToken, EventSink, ProgressEvent, Stopwatch
from engine.storage.runfile import state_from_bytes, state_to_bytes
from engine.training.losses import loss_function

STAGE = "connect"


def learning_rate(options: ConnectOptions, epoch: int) -> float:
    """Garipov et al.'s schedule: constant for the first half, linear down to 1 % at 90 %, then 1 %."""
    progress = (epoch - 1) / max(options.epochs, 1)
    if progress <= 0.5:
        factor = 1.0
    elif progress <= 0.9:
        factor = 1.0 - (progress - 0.5) / 0.4 * 0.99
    else:
        factor = 0.01
    return options.lr * factor


class CurveTrainer:
    """The bends, their optimiser and the random streams, stepped one epoch at a time."""

    def __init__(self, ends: EndPoints, options: ConnectOptions, augment: bool) -> None:
        self.ends, self.options, self.augment = ends, options, augment
        self.curve = CurveParameters.straight(ends, options.curve, options.bends)
        self.optimizer = torch.optim.SGD(self.curve.trainable(), lr=options.lr, momentum=options.momentum,
                                         weight_decay=options.weight_decay)
        self.generator = torch.Generator().manual_seed(options.seed)
        self.loss_fn = loss_function(ends.loss)
        self.batches = math.ceil(len(ends.x_train) / options.batch_size)

    def restore(self, record: CurveRecord) -> None:
        """Continue from the state the record's last finished epoch left."""
        device = self.ends.x_train.device
        with torch.no_grad():
            for params, stored in zip(self.curve.bends, record.bends):
                for name, param in params.items():
                    param.copy_(torch.from_numpy(np.asarray(stored[name])).to(device))
        state = state_from_bytes(record.resume, str(record.path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])

    def resume_bytes(self) -> np.ndarray:
        return state_to_bytes({"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                               "torch_rng": torch.get_rng_state()})

    def epoch(self, number: int, cancel: CancelToken, tick: Callable[[int], None]) -> float:
        """One pass over A's training split; returns the mean training loss."""
        ends, options = self.ends, self.options
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(options, number)
        ends.model.train()
        order = torch.randperm(len(ends.x_train), generator=self.generator).to(ends.x_train.device)
        running, seen = 0.0, 0
        for b, start in enumerate(range(0, len(order), options.batch_size)):
            cancel.raise_if_cancelled()
            index = order[start:start + options.batch_size]
            t = float(torch.rand((), generator=self.generator))
            if len(index) < 2 < len(order):
                continue  # batch norm cannot train on one sample
            value = self._step(index, t, number, b)
            running += value * len(index)
            seen += len(index)
            tick(b + 1)
        return running / max(seen, 1)

    def _step(self, index: torch.Tensor, t: float, number: int, batch: int) -> float:
        ends = self.ends
        inputs = ends.x_train[index]
        if self.augment:
            inputs = augment_batch(inputs, self.generator)
        outputs = functional_call(ends.model, self.curve.at(t), (inputs,))
        loss = self.loss_fn(outputs, ends.y_train[index])
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(f"the curve's training loss became {value} at epoch {number}, batch {batch + 1} "
                                f"(t = {t:.3f}); lower --lr. The last finished epoch is kept in the file.")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return value


def train_bends(trainer: CurveTrainer, record: CurveRecord, save: Callable[[CurveRecord], None],
                on_event: EventSink, cancel: CancelToken) -> None:
    """Train from ``record.epochs_done`` to ``options.epochs``, saving after every epoch."""
    options = trainer.options
    start, per_epoch = record.epochs_done, trainer.batches
    total, clock = max((options.epochs - start) * per_epoch, 1), Stopwatch()
    for number in range(start + 1, options.epochs + 1):
        done_before = (number - start - 1) * per_epoch

        def tick(batch: int, done_before: int = done_before) -> None:
            on_event(ProgressEvent(STAGE, done_before + batch, total, clock()))

        mean_loss = trainer.epoch(number, cancel, tick)
        record.bends = trainer.curve.bend_arrays()
        record.train_loss.append(mean_loss)
        record.epochs_done = number
        record.resume = trainer.resume_bytes()
        save(record)
        on_event(ProgressEvent(STAGE, (number - start) * per_epoch, total, clock(),
                               f"curve epoch {number:>3}/{options.epochs}  train loss along the curve "
                               f"{mean_loss:.4f}  lr {learning_rate(options, number):.3g}",
                               {"epoch": number, "train_loss": mean_loss}))
