"""What evaluates the points of a surface: a recipe for an evaluator, and running it in this process.

:class:`EvaluatorSpec` holds everything a :class:`PointEvaluator` is built from (model, directions,
evaluation tensors, options). It is picklable, so worker processes
(:mod:`engine.landscape.distribution.pool`) build their own evaluator from it, with the tensors
in shared memory. Points travel in *chunks*: the list of chunks depends only on the points and
on the evaluator's ``points_per_forward`` (a rule, never a timing), and every chunk is evaluated
alone, so a surface has the same bits whichever process evaluates which chunk.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from engine.events import CancelToken
from engine.landscape.directions.build import Directions
from engine.landscape.evaluation.evaluate import PointEvaluator
from engine.landscape.evaluation.speed import SpeedRecord

Point = tuple[float, float, int]  # alpha, beta, direction
Chunk = list[Point]


@dataclass
class EvaluatorSpec:
    """The arguments of a :class:`PointEvaluator`, kept to build one here or in a worker process."""

    model: nn.Module
    directions: Directions
    data: Mapping[str, tuple[Tensor, Tensor]]
    loss: str
    device: torch.device
    batch_size: int = 0
    bn_train_mode: bool = False
    precision: str = "fp32"
    compile: bool = False
    extra_metrics: Sequence[Any] = field(default_factory=tuple)

    def build(self) -> PointEvaluator:
        return PointEvaluator(
            self.model,
            self.directions,
            self.data,
            self.loss,
            self.device,
            self.batch_size,
            self.bn_train_mode,
            precision=self.precision,
            compile=self.compile,
            extra_metrics=self.extra_metrics,
        )

    def shareable(self) -> EvaluatorSpec:
        """Images stored channels-last once, here, so that worker processes share them as they are
        instead of each making its own channels-last copy."""
        data = {
            s: (x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x, y)
            for s, (x, y) in self.data.items()
        }
        return EvaluatorSpec(**{**self.__dict__, "data": data})


def point_chunks(points: Sequence[Point], points_per_forward: int, row: int) -> list[Chunk]:
    """``points`` in order, cut into the chunks that are evaluated one at a time."""
    step = max(1, min(points_per_forward, row))
    return [list(points[first : first + step]) for first in range(0, len(points), step)]


def evaluate_chunk(evaluator: PointEvaluator, chunk: Chunk) -> tuple[list[dict[str, float]], float]:
    """Metrics of each point of ``chunk`` and the seconds per point."""
    start = time.perf_counter()
    results = evaluator.evaluate_many(chunk)
    return results, (time.perf_counter() - start) / max(len(chunk), 1)


class ChunkRunner(Protocol):
    """Evaluates chunks and yields ``(results, seconds per point)`` in the order of the chunks."""

    record: SpeedRecord

    def run(self, chunks: Sequence[Chunk], cancel: CancelToken | None) -> Iterator[tuple[list, float]]: ...

    def close(self) -> None: ...


class InProcessRunner:
    """Evaluates on this process's own threads (one core, CUDA, or ``workers = 1``)."""

    def __init__(self, spec: EvaluatorSpec, threads: int) -> None:
        self._threads_before = torch.get_num_threads()
        if spec.device.type == "cpu":
            torch.set_num_threads(threads)
        self.evaluator = spec.build()
        self.record = self.evaluator.record
        self.record.workers = 1

    def run(self, chunks: Sequence[Chunk], cancel: CancelToken | None) -> Iterator[tuple[list, float]]:
        for chunk in chunks:
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield evaluate_chunk(self.evaluator, chunk)

    def close(self) -> None:
        torch.set_num_threads(self._threads_before)


_ALLOCATOR_TUNED = False


def tune_allocator() -> None:
    """Larger glibc malloc thresholds for a process that evaluates surfaces.

    glibc maps and unmaps activation buffers every batch; larger thresholds cut eager forward
    time by ~40 % (measured here: see README "Speed"). This changes the allocator of the whole
    process, so only processes that do nothing but evaluate call it: the worker processes and
    the ``losslab surface`` command - never the desktop app's process.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or not sys.platform.startswith("linux"):
        return
    _ALLOCATOR_TUNED = True
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 1 << 30)
        libc.mallopt(m_top_pad, 256 << 20)


PRECISION_CHECK_SAMPLES = 128  # per split: enough to show the rounding, cheap next to a grid


def precision_error(spec: EvaluatorSpec) -> dict[str, float]:
    """Relative difference of each loss between ``spec.precision`` and fp32 at the centre of the
    grid, on the first PRECISION_CHECK_SAMPLES samples of each split: the price of bf16/fp16, measured."""
    data = {s: (x[:PRECISION_CHECK_SAMPLES], y[:PRECISION_CHECK_SAMPLES]) for s, (x, y) in spec.data.items()}
    values = {}
    for precision in ("fp32", spec.precision):
        check = EvaluatorSpec(**{**spec.__dict__, "data": data, "precision": precision, "compile": False,
                                 "extra_metrics": ()})
        model = check.model
        check.model = copy.deepcopy(model)  # the evaluator re-seats the model's tensors
        values[precision] = check.build().evaluate(0.0)
    exact, rounded = values["fp32"], values[spec.precision]
    return {k: abs(rounded[k] - exact[k]) / max(abs(exact[k]), 1e-12) for k in exact if k.endswith("_loss")}
