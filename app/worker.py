"""The engine bridge: one background thread runs training and surface jobs from a queue.

A :class:`Job` wraps a Qt-free engine call ``run(on_event, cancel) -> result``. The
worker thread runs queued jobs one after the other and reports through Qt signals,
which Qt delivers on the GUI thread. Cancelling sets the job's engine CancelToken, so the
engine stops at its next safe point with its files complete.
"""

from __future__ import annotations

import itertools
import os
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from engine.errors import ConfigError, LossLabError
from engine.events import Cancelled, CancelToken, EventSink, ProgressEvent

# Progress without a payload (e.g. every training batch) reaches the GUI at most this often;
# events carrying data (epoch metrics, new surface points) always go through.
PROGRESS_INTERVAL_S = 0.05

_ids = itertools.count(1)


@dataclass
class Job:
    """One unit of engine work. ``run`` gets an event sink and the job's cancel token."""

    kind: str  # "train" | "surface" | any short word shown to the user
    title: str
    run: Callable[[EventSink, CancelToken], Any]
    output: Path | None = None
    token: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_ids))

    def cancel(self) -> None:
        self.token.cancel()


@dataclass(frozen=True)
class JobError:
    """What went wrong, in words a user can act on, and which field or file it concerns."""

    message: str
    where: str = ""
    details: str = ""


def describe_error(exc: BaseException, file: Path | None = None) -> JobError:
    """Turn an exception into a message plus the field or file concerned (``file``: the job's output)."""
    if isinstance(exc, ConfigError):
        where = f"field {exc.key}" + (f" in {exc.source}" if exc.source else "")
        return JobError(str(exc), where)
    if isinstance(exc, LossLabError):
        return JobError(str(exc), f"file {file}" if file else "")
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return JobError(f"{type(exc).__name__}: {exc}", "", details)


def preload_engine_libraries() -> None:
    """Load torch's compiler stack before any OpenGL context exists (call before the first 3D view).

    Building an optimiser imports torch._dynamo, which loads triton and its bundled LLVM.
    Under Mesa (llvmpipe, e.g. Xvfb) the GL driver has loaded its own LLVM by then, and
    loading triton's second copy crashes the process. Loaded first, both coexist.
    """
    import torch._dynamo  # noqa: F401

    try:
        import triton  # noqa: F401
    except ImportError:  # CPU-only torch builds come without triton
        pass


def worker_threads() -> int:
    """Torch threads for jobs: all cores but one, so the GUI thread always has a core."""
    return max(1, (os.cpu_count() or 2) - 1)


class _Forwarder:
    """Event sink that throttles payload-free progress before it crosses into Qt."""

    def __init__(self, worker: EngineWorker, job: Job) -> None:
        self._worker, self._job = worker, job
        self._last = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        final = event.total > 0 and event.done >= event.total
        if event.payload or event.message or final or now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self._worker.progress.emit(self._job, event)


class _JobThread(QThread):
    def __init__(self, worker: EngineWorker) -> None:
        super().__init__()
        self._worker = worker
        self.jobs: queue.Queue[Job | None] = queue.Queue()

    def run(self) -> None:
        import torch  # the job's numeric work lives here, never on the GUI thread

        torch.set_num_threads(worker_threads())
        while (job := self.jobs.get()) is not None:
            self._worker._run_one(job)


class EngineWorker(QObject):
    """Runs jobs sequentially on one background thread; all signals arrive on the GUI thread."""

    job_queued = Signal(object)  # Job
    job_started = Signal(object)  # Job
    progress = Signal(object, object)  # Job, ProgressEvent
    job_finished = Signal(object, object)  # Job, result of job.run
    job_cancelled = Signal(object)  # Job
    job_failed = Signal(object, object)  # Job, JobError
    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = _JobThread(self)
        self._pending: list[Job] = []
        self.current: Job | None = None
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self._pending)

    def submit(self, job: Job) -> Job:
        self._pending.append(job)
        self._thread.jobs.put(job)
        self.job_queued.emit(job)
        return job

    def cancel(self, job: Job | None = None) -> None:
        """Cancel one job (default: the running one); a queued job then ends at once."""
        job = job or self.current
        if job is not None:
            job.cancel()

    def cancel_all(self) -> None:
        for job in [self.current, *self._pending]:
            if job is not None:
                job.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything and stop the thread; True when it stopped in time."""
        self.cancel_all()
        self._thread.jobs.put(None)
        return self._thread.wait(timeout_ms)

    def _run_one(self, job: Job) -> None:
        # Runs on the worker thread.
        if job in self._pending:
            self._pending.remove(job)
        self.current = job
        self.job_started.emit(job)
        try:
            job.token.raise_if_cancelled()
            result = job.run(_Forwarder(self, job), job.token)
        except Cancelled:
            self.job_cancelled.emit(job)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user, not kill the thread
            self.job_failed.emit(job, describe_error(exc, job.output))
        else:
            self.job_finished.emit(job, result)
        finally:
            self.current = None
            if not self._pending:
                self.idle.emit()
