"""Grid points evaluated on several CPU cores at once: one single-threaded worker process per core.

Each worker builds its own :class:`PointEvaluator` (its own model copy) from one
:class:`EvaluatorSpec` whose tensors - the evaluation data, theta and the directions - live in
shared memory, so N workers hold one copy of the data. The parent process keeps the surface
file: it hands out chunks of points in coarse-to-fine order and writes results back in that
order through the usual crash-safe writer, so progress, cancel and resume work as with one process.

Why processes of one thread each, not threads: a point is a long chain of small operations
whose intra-op threads synchronise after every layer; on a loaded core those barriers wait for
the slowest thread (two threads on two busy cores ran 9-45x slower than one). Independent
processes never wait for each other, and each point is computed exactly as by one process
(:func:`engine.landscape.evaluation.runner.point_chunks`), so the bits do not depend on N.

Workers are started with ``spawn`` (safe under Qt and with running OpenMP pools) and die with
their parent (``PR_SET_PDEATHSIG`` on Linux, and a parent check while idle), so a killed job
leaves no orphans; what the parent wrote is a valid, resumable file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.multiprocessing as torch_mp

from engine.device import usable_cores
from engine.errors import LossLabError
from engine.events import CancelToken
from engine.landscape.evaluation.runner import (
    Chunk,
    EvaluatorSpec,
    InProcessRunner,
    evaluate_chunk,
    tune_allocator,
)
from engine.landscape.evaluation.speed import SpeedRecord

POLL_SECONDS = 0.5  # how often a waiting parent checks cancel and its workers' health
START_TIMEOUT = 600.0  # importing torch and building an evaluator (compiling included)
# Remaining work below this stays in this process: starting a worker costs 2-3 CPU seconds (importing
# torch) while this process keeps evaluating, so only jobs a few such costs long gain (bench_speed.py).
PARALLEL_MIN_SECONDS = 5.0
MEMORY_FRACTION = 0.5  # of the available memory, for all workers' model copies and activations
PR_SET_PDEATHSIG = 1


class WorkerStartError(LossLabError):
    """A worker could not build its evaluator (e.g. a model class it cannot import)."""


@dataclass(frozen=True)
class Plan:
    """How many processes evaluate, with how many intra-op threads each."""

    workers: int
    threads: int


def plan_workers(
    requested_workers: int,
    requested_threads: int,
    device_type: str,
    points: int,
    bytes_per_worker: int = 0,
    cores: int | None = None,
) -> Plan:
    """The default: one single-threaded worker per usable core, never more than points to compute
    or than fit in memory. ``--threads T`` alone gives cores // T workers of T threads.
    CUDA evaluates in this process (several GPUs: torchrun, one process each)."""
    threads = max(1, requested_threads)
    if device_type != "cpu":
        return Plan(1, threads)
    if requested_workers > 0:
        return Plan(max(1, min(requested_workers, points)), threads)
    cores = usable_cores() if cores is None else cores
    workers = max(1, cores // threads)
    if bytes_per_worker > 0:
        workers = min(workers, max(1, int(_available_memory() * MEMORY_FRACTION) // bytes_per_worker))
    return Plan(max(1, min(workers, points)), threads)


def _available_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 34


class WorkerPool:
    """``workers`` processes evaluating chunks of points; results come back in chunk order."""

    def __init__(self, spec: EvaluatorSpec, workers: int, threads: int) -> None:
        context = torch_mp.get_context("spawn")
        self._tasks = context.Queue()
        self._results = context.Queue()
        shared = spec.shareable()
        _allow_many_shared_tensors()
        self._processes = [
            context.Process(
                target=_worker_main,
                args=(shared, threads, self._tasks, self._results, os.getpid()),
                name=f"losslab-surface-worker-{k}",
                daemon=True,
            )
            for k in range(workers)
        ]
        with _main_module_not_rerun():
            for process in self._processes:
                process.start()
        self._records: list[SpeedRecord] = []
        self.record: SpeedRecord | None = None

    def poll_ready(self, timeout: float = 0.0) -> bool:
        """Whether every worker has built its evaluator (waits up to ``timeout`` seconds);
        raises WorkerStartError if one could not."""
        deadline = time.perf_counter() + timeout
        while len(self._records) < len(self._processes):
            left = deadline - time.perf_counter()
            kind, payload = self._receive(timeout=max(left, 0.0)) if left > 0 else self._receive_now()
            if kind == "idle":
                return False
            if kind == "error":
                self.close()
                raise WorkerStartError(f"a surface worker process could not start: {payload}")
            self._records.append(payload)
        if self.record is None:
            self.record = self._records[0]
            self.record.workers = len(self._processes)
        return True

    def wait_ready(self) -> SpeedRecord:
        if not self.poll_ready(START_TIMEOUT):
            self.close()
            raise WorkerStartError(f"surface workers did not start within {START_TIMEOUT:.0f} s")
        return self.record

    def run(self, chunks: Sequence[Chunk], cancel: CancelToken | None) -> Iterator[tuple[list, float]]:
        """Yields ``(results, seconds per point)`` for each chunk, in the order of ``chunks``."""
        for number, chunk in enumerate(chunks):
            self._tasks.put((number, chunk))
        waiting: dict[int, tuple[list, float]] = {}
        for number in range(len(chunks)):
            while number not in waiting:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                kind, payload = self._receive(timeout=POLL_SECONDS)
                if kind == "error":
                    raise LossLabError(f"a surface worker process failed: {payload}")
                if kind == "done":
                    done_number, results, seconds = payload
                    waiting[done_number] = (results, seconds)
            yield waiting.pop(number)

    def _receive_now(self) -> tuple[str, object]:
        try:
            return self._results.get_nowait()
        except queue.Empty:
            return self._receive(timeout=0.0)

    def _receive(self, timeout: float) -> tuple[str, object]:
        """The next message; ("idle", None) after ``timeout`` with every worker alive."""
        if timeout > 0:
            try:
                return self._results.get(timeout=timeout)
            except queue.Empty:
                pass
        for process in self._processes:
            if not process.is_alive():
                return "error", f"{process.name} ended unexpectedly (exit code {process.exitcode})"
        return "idle", None

    def close(self) -> None:
        """Stop every worker now (points in flight are dropped; nothing was written for them)."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for q in (self._tasks, self._results):
            q.cancel_join_thread()
            q.close()


def _worker_main(spec: EvaluatorSpec, threads: int, tasks, results, parent: int) -> None:  # noqa: ANN001
    """A worker's life: build the evaluator, then evaluate chunks until the parent goes away."""
    _die_with_parent()
    tune_allocator()
    torch.set_num_threads(threads)
    try:
        evaluator = spec.build()
        evaluator.record.threads = torch.get_num_threads()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which says what failed
        results.put(("error", _describe(exc)))
        return
    results.put(("ready", evaluator.record))
    while True:
        try:
            number, chunk = tasks.get(timeout=POLL_SECONDS * 4)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        try:
            outcome = evaluate_chunk(evaluator, chunk)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the job
            results.put(("error", _describe(exc)))
            return
        results.put(("done", (number, *outcome)))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, LossLabError):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1:] or [None]
    where = f" ({last[0].filename}:{last[0].lineno})" if last[0] is not None else ""
    return f"{type(exc).__name__}: {exc}{where}"


def defined_in_main(spec: EvaluatorSpec) -> bool:
    """Whether the model or an extra metric is a class of the ``__main__`` script, which worker
    processes do not import (see :func:`_main_module_not_rerun`)."""
    objects = [*spec.model.modules(), *spec.extra_metrics]
    return any(type(obj).__module__ == "__main__" for obj in objects)


@contextlib.contextmanager
def _main_module_not_rerun() -> Iterator[None]:
    """Start workers without re-running the caller's ``__main__`` script in them.

    ``spawn`` normally imports the parent's main script in every child, which re-runs a script
    that calls ``compute_surface`` at top level without an ``if __name__ == "__main__"`` guard
    (endless recursion). Workers need nothing from it: their entry point and the model's class
    live in importable modules (a model defined in ``__main__`` is evaluated in the parent instead).
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _allow_many_shared_tensors() -> None:
    """Each shared tensor travels as a file descriptor that stays open while it lives (model,
    theta and directions: a few per parameter tensor); a desktop's soft limit of 1,024 open files
    would stop large models, so raise it to the hard limit (workers inherit it)."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 1 << 16 if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when its parent dies (e.g. ``kill -9`` of the job)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ParallelRunner:
    """The default on a CPU: points start in this process at once, and worker processes take over
    once they are ready - but only when the job is long enough to pay for starting them
    (importing torch costs each worker a few CPU seconds).

    ``eager_pool`` (workers asked for explicitly) starts the pool at once and leaves every point to
    it. Both ways evaluate the same chunks on one-thread evaluators, so the numbers are the same.
    """

    def __init__(
        self, spec: EvaluatorSpec, plan: Plan, eager_pool: bool, on_message: Callable[[str, int], None]
    ) -> None:
        """``on_message(text, points done so far)`` tells the user when workers start or fail."""
        self.spec, self.plan, self.on_message = spec, plan, on_message
        self._done = 0
        self.pool: WorkerPool | None = None
        self.local: InProcessRunner | None = None
        self._may_start = not eager_pool
        if eager_pool:
            self._start_pool()
            self.record = self.pool.wait_ready()
        else:
            self.local = InProcessRunner(spec, plan.threads)
            self.record = self.local.record

    def run(self, chunks: Sequence[Chunk], cancel: CancelToken | None) -> Iterator[tuple[list, float]]:
        position, local_seconds = 0, 0.0
        while position < len(chunks) and not self._pool_ready():
            if cancel is not None:
                cancel.raise_if_cancelled()
            start = time.perf_counter()
            yield evaluate_chunk(self.local.evaluator, chunks[position])
            local_seconds += time.perf_counter() - start
            self._done += len(chunks[position])
            position += 1
            remaining = local_seconds / position * (len(chunks) - position)
            if self._may_start and remaining > PARALLEL_MIN_SECONDS:
                self._start_pool()
        if position < len(chunks):
            self._check_same_path()
            yield from self.pool.run(chunks[position:], cancel)

    def _start_pool(self) -> None:
        self.on_message(f"starting {self.plan.workers} worker processes, {self.plan.threads} thread(s) each",
                        self._done)
        self._may_start = False
        self.pool = WorkerPool(self.spec, self.plan.workers, self.plan.threads)

    def _pool_ready(self) -> bool:
        if self.pool is None or self.local is None:
            return self.local is None
        try:
            return self.pool.poll_ready()
        except WorkerStartError as exc:
            self.on_message(f"{exc}; evaluating in this process instead", self._done)
            self.pool = None
            self.local.record.workers = 1
            return False

    def _check_same_path(self) -> None:
        """Chunks were cut by this process's evaluator; a worker's must agree (they follow one rule)."""
        theirs = self.pool.record
        if self.local is not None:
            if theirs.points_per_forward != self.local.record.points_per_forward:
                raise LossLabError("worker processes chose another evaluation path than this process")
            self.record.workers = theirs.workers
            self.local.close()
            self.local = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.local is not None:
            self.local.close()
