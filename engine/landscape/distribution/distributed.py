"""One surface computed by the processes of a ``torchrun`` job (one machine or many).

``torchrun --nproc_per_node=N -m engine.cli surface RUN.h5 ... --out S.h5`` starts N copies of
the command; each finds its place in RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR and MASTER_PORT and joins a ``torch.distributed`` group. Only small control
messages travel through it - NCCL when each process on a node has a GPU of its own, gloo
otherwise; the points travel through files:

1. Process 0 creates ``S.h5`` (coordinates, directions) or checks an existing one and merges
   the shard files an interrupted job left (:mod:`engine.landscape.distribution.shards`); the others wait.
2. Every process reads the directions and the still-missing points from ``S.h5`` and takes
   every N-th of those points in coarse-to-fine order, so the coarse grid completes first.
3. Each evaluates its share into its own shard ``S.h5.rank<k>-of-<N>`` with
   :func:`compute_surface`, so every point is evaluated exactly as in a single process.
4. Process 0 merges the shards into ``S.h5`` every few seconds - the file and the progress bar,
   which counts the points merged from all processes, show the whole job - and, when every
   point has arrived, once more before it deletes the shards.

A process that fails stops the job (torchrun ends the others); the shards keep what was done
and the next job, with any number of processes, merges them and computes only the rest.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from engine.device import usable_cores
from engine.errors import ConfigError, LossLabError, RunFileError
from engine.events import EventSink, ProgressEvent, Stopwatch, ignore_events
from engine.landscape.directions.build import Directions
from engine.landscape.directions.source import as_source
from engine.landscape.distribution.shards import ShardMerger, read_pending, shard_path
from engine.landscape.evaluation.evaluate import resolve_device
from engine.landscape.options import SurfaceOptions
from engine.landscape.surface import STAGE, compute_surface, stored_directions

MERGE_SECONDS = 2.0  # while process 0 evaluates its own share
WAIT_SECONDS = 0.5  # once it has, while the others finish
# Process 0 may spend long building directions (PCA over many checkpoints) while the others wait.
STARTUP_TIMEOUT = datetime.timedelta(hours=2)
ENV_SOURCE = "environment (set by torchrun)"

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place in the job."""

    rank: int
    size: int
    local_rank: int
    local_size: int  # processes on this machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env(env: Mapping[str, str] | None = None) -> World | None:
    """The job this process belongs to, from torchrun's variables; None when it runs alone."""
    env = os.environ if env is None else env
    size = _env_int(env, "WORLD_SIZE", 1)
    if size <= 1:
        return None
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if not env.get(key):
            raise ConfigError(
                key, None, f"a value when WORLD_SIZE = {size}: launch with torchrun, which sets it", ENV_SOURCE
            )
    rank = _env_int(env, "RANK", 0)
    if not 0 <= rank < size:
        raise ConfigError("RANK", rank, f"0 <= RANK < WORLD_SIZE = {size}", ENV_SOURCE)
    # Without LOCAL_WORLD_SIZE assume the worst case (all on one machine) when sharing out GPUs.
    return World(rank, size, _env_int(env, "LOCAL_RANK", 0), _env_int(env, "LOCAL_WORLD_SIZE", size))


def _env_int(env: Mapping[str, str], key: str, default: int) -> int:
    value = env.get(key, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(key, value, "a whole number", ENV_SOURCE) from None


def compute_surface_distributed(
    subject: Any,
    options: SurfaceOptions,
    out: str | Path,
    world: World,
    *,
    on_event: EventSink = ignore_events,
) -> Path:
    """This process's part of the surface job ``world``; process 0 returns when ``out`` is complete.

    Process 0 forwards progress events to ``on_event`` (stage "surface", counts of the whole job,
    payload of the merged points as :func:`compute_surface` sends them); the others stay quiet.
    """
    source, out = as_source(subject), Path(out)
    workers = cores_per_process(options, world)
    backend, flag_device = _join_device(options, world)
    dist.init_process_group(
        backend, init_method="env://", rank=world.rank, world_size=world.size, timeout=STARTUP_TIMEOUT
    )
    try:
        return _run(source, options, out, world, flag_device, on_event if world.is_main else ignore_events, workers)
    finally:
        dist.destroy_process_group()


def cores_per_process(options: SurfaceOptions, world: World) -> int:
    """Worker processes for each torchrun process: the machine's cores split among the processes
    torchrun started on it, so the machine is used but not oversubscribed (``workers`` given: that).
    torchrun sets OMP_NUM_THREADS=1 for every process, so it does not count here."""
    if options.workers > 0:
        return options.workers
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    threads = max(1, options.threads)
    return max(1, usable_cores(env) // (world.local_size * threads))


def plan_devices(device_type: str, world: World, gpus: int) -> tuple[str, int | None]:
    """The process group's backend and this process's GPU (None on CPUs) among ``gpus`` per machine."""
    if device_type != "cuda":
        return "gloo", None
    gpu = world.local_rank % gpus  # more processes than GPUs share them round-robin
    return ("nccl" if world.local_size <= gpus else "gloo"), gpu  # NCCL refuses two processes on one GPU


def _join_device(options: SurfaceOptions, world: World) -> tuple[str, torch.device]:
    """The backend and where its messages live; pins this process to its GPU."""
    device = resolve_device(options.device)  # ConfigError when CUDA is asked for and absent
    backend, gpu = plan_devices(device.type, world, torch.cuda.device_count() if device.type == "cuda" else 0)
    if gpu is None:
        return backend, torch.device("cpu")
    torch.cuda.set_device(gpu)  # the evaluator's "cuda" is now this GPU
    return backend, torch.device("cuda", gpu) if backend == "nccl" else torch.device("cpu")


def _run(
    source: Any,
    options: SurfaceOptions,
    out: Path,
    world: World,
    flag_device: torch.device,
    on_event: EventSink,
    workers: int,
) -> Path:
    if world.is_main:  # create or check S.h5 and merge leftover shards; evaluates nothing
        _together(flag_device, lambda: compute_surface(source, options, out, select=lambda todo: []))
    else:
        _together(flag_device, lambda: None)
    mine = shard_path(out, world.rank, world.size)
    directions, pending = _together(flag_device, lambda: _read_job(source, options, out, mine))
    total = int(pending.sum())

    def share(todo: list) -> list:
        # ``todo`` is every point in order (the shard is new): the same list in every process,
        # so the shares are disjoint and cover the points S.h5 misses
        return [p for p in todo if pending[p[0]]][world.rank :: world.size]

    progress = _MergedProgress(out, mine, total, world.size, on_event) if world.is_main else None
    try:
        if len(range(world.rank, total, world.size)):
            compute_surface(
                source, options, mine, directions=directions, select=share, on_event=progress or ignore_events,
                workers=workers,
            )
        if progress is not None:
            progress.until_complete()
    finally:
        if progress is not None:
            progress.close()
    return out


def _read_job(source: Any, options: SurfaceOptions, out: Path, mine: Path) -> tuple[Directions, np.ndarray]:
    """The directions and the missing points of ``out``, as process 0 left them."""
    if mine.exists():
        raise RunFileError(f"{mine} exists although process 0 merged every shard; is another job writing {out}?")
    return stored_directions(out, source, options), read_pending(out)


def _together(flag_device: torch.device, step: Callable[[], T]) -> T:
    """Run ``step`` here, then wait for every process; if it failed anywhere, every process stops."""
    error: LossLabError | None = None
    result = None
    try:
        result = step()
    except LossLabError as exc:
        error = exc
    failed = torch.tensor([0 if error is None else 1], device=flag_device)
    dist.all_reduce(failed)
    if error is not None:
        raise error
    if int(failed.item()):
        raise LossLabError(f"{int(failed.item())} other process(es) of this job failed; see their messages")
    return result  # type: ignore[return-value]


class _MergedProgress:
    """Process 0's view of the job: merges the shards into ``out`` and reports the merged count."""

    def __init__(self, out: Path, own: Path, total: int, processes: int, on_event: EventSink) -> None:
        self.total, self.done, self.on_event = total, 0, on_event
        self.merger = ShardMerger(out, own)
        self.clock, self.last_merge = Stopwatch(), time.perf_counter()
        message = f"surface: {total} points to compute by {processes} processes -> {out}"
        on_event(ProgressEvent(STAGE, 0, total, 0.0, message))

    def __call__(self, event: ProgressEvent) -> None:
        """Events of process 0's own share: a chance to merge everyone's new points."""
        if time.perf_counter() - self.last_merge >= MERGE_SECONDS:
            self.merge()

    def merge(self, remove: bool = False) -> None:
        # tolerant: a shard another process is creating or closing is read at the next merge
        points = self.merger.merge(remove=remove, tolerant=True)
        self.last_merge = time.perf_counter()
        self.done += len(points)
        if points:
            payload = {
                "indices": [index for index, _ in points],
                "shape": self.merger.writer.shape,
                "values": {m: [values[m] for _, values in points] for m in self.merger.writer.metrics},
            }
            self.on_event(ProgressEvent(STAGE, self.done, self.total, self.clock(), payload=payload))

    def until_complete(self) -> None:
        """Merge until every point of the job is in ``out`` (each one is merged once), then
        delete the shards: they hold nothing ``out`` lacks any more."""
        while self.done < self.total:
            time.sleep(WAIT_SECONDS)
            self.merge()
        self.merge(remove=True)

    def close(self) -> None:
        self.merger.close()
