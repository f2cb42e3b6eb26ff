"""The engine bridge: background jobs with their own handles, signals and states.

A :class:`Job` wraps a Qt-free engine call ``run(on_event, cancel) -> result`` and is the
handle a panel keeps: it has its own signals (``progress``, ``finished``, ``failed``,
``cancelled``, ``paused``, ``state_changed``) and its own :class:`JobState`, so no panel
filters other jobs' events (the model is napari's ``create_worker`` / superqt's thread
workers). A :class:`JobRunner` runs its jobs one after the other on one background thread;
a part of the app that must not wait behind long jobs (the bias preview) owns a second runner.

Every state change happens on the GUI thread, in the order the worker thread reported it,
and just before the matching signal: a job's :attr:`Job.state` is always what the user was
last told. Pause and Cancel both stop the engine at its next safe point with its files
complete; the job then ends ``PAUSED`` (resumable: the panel submits a resuming job) or
``CANCELLED``. Asking is immediate (``PAUSING``); a job that has not started yet ends at once.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.errors import ConfigError, LossLabError
from engine.events import Cancelled, CancelToken, EventSink, ProgressEvent

# Progress without a payload (e.g. every training batch) reaches the GUI at most this often;
# events carrying data (epoch metrics, new surface points) always go through.
PROGRESS_INTERVAL_S = 0.05

_ids = itertools.count(1)


class JobState(StrEnum):
    """Where a job is. ``IDLE``: created or queued, not started; the last four are final.
    A StrEnum, so ``state == "paused"`` reads as plainly as ``state is JobState.PAUSED``."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"
    FINISHED = "finished"

    @property
    def is_final(self) -> bool:
        return self in (JobState.PAUSED, JobState.CANCELLED, JobState.FAILED, JobState.FINISHED)

    @property
    def is_active(self) -> bool:
        """Started or waiting to start, and not ended yet."""
        return self in (JobState.IDLE, JobState.RUNNING, JobState.PAUSING)


@dataclass(frozen=True)
class JobError:
    """What went wrong, in words a user can act on, and which field or file it concerns."""

    message: str
    where: str = ""
    details: str = ""
    exception: BaseException | None = field(default=None, compare=False, repr=False)


def describe_error(exc: BaseException, file: Path | None = None) -> JobError:
    """Turn an exception into a message plus the field or file concerned (``file``: the job's output)."""
    if isinstance(exc, ConfigError):
        where = f"field {exc.key}" + (f" in {exc.source}" if exc.source else "")
        return JobError(str(exc), where, exception=exc)
    if isinstance(exc, LossLabError):
        return JobError(str(exc), f"file {file}" if file else "", exception=exc)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return JobError(f"{type(exc).__name__}: {exc}", "", details, exc)


class Job(QObject):
    """One unit of engine work and its handle: ``run`` gets an event sink and the cancel token.

    Create it, :meth:`JobRunner.submit` it, connect to its signals. ``run`` executes on the
    runner's thread; every signal arrives on the GUI thread.
    """

    started = Signal()
    progress = Signal(object)  # ProgressEvent
    finished = Signal(object)  # result of run
    failed = Signal(object)  # JobError
    cancelled = Signal()
    paused = Signal()
    state_changed = Signal(object)  # JobState
    # Crosses from the worker thread to the GUI thread (queued): (what, argument).
    _report = Signal(str, object)

    def __init__(self, kind: str, title: str, run: Callable[[EventSink, CancelToken], Any],
                 output: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.kind, self.title, self.run, self.output = kind, title, run, output
        self.token = CancelToken()
        self.id = next(_ids)
        self.state = JobState.IDLE
        self.result: Any = None
        self.error: JobError | None = None
        self.last_event: ProgressEvent | None = None
        self.base = 0.0  # share of the whole task done before this job (a resumed run or surface)
        self._stop_as = JobState.CANCELLED  # what a stopped engine call means: Pause or Cancel
        self._report.connect(self._on_report)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.title!r} {self.state}>"

    def overall(self, event: ProgressEvent) -> float:
        """``event``'s progress as a share of the whole task: a resumed job continues at ``base``."""
        return min(1.0, self.base + (1.0 - self.base) * event.fraction)

    # -- asked from the GUI ------------------------------------------------------------
    def cancel(self) -> None:
        """Stop for good at the next safe point (files so far are kept)."""
        self._stop(JobState.CANCELLED)

    def pause(self) -> None:
        """Stop at the next safe point, to be resumed later by a new job on the same files."""
        self._stop(JobState.PAUSED)

    def _stop(self, how: JobState) -> None:
        if self.state.is_final:
            return
        self._stop_as = how
        self.token.cancel()
        if self.state is JobState.IDLE:  # never started: it ends now, the runner skips it
            self._end(how)
        elif how is JobState.PAUSED:
            self._set_state(JobState.PAUSING)

    # -- reported by the worker thread (delivered here on the GUI thread) -------------------
    def _on_report(self, what: str, argument: object) -> None:
        if self.state.is_final:
            return  # e.g. cancelled while queued: the runner's late word changes nothing
        if what == "started":
            self._set_state(JobState.RUNNING)  # a stop asked before this point ended the job already
            self.started.emit()
        elif what == "progress":
            self.last_event = argument
            self.progress.emit(argument)
        elif what == "finished":
            self.result = argument
            self._end(JobState.FINISHED)
        elif what == "failed":
            self.error = argument
            self._end(JobState.FAILED)
        elif what == "stopped":
            self._end(self._stop_as)

    def _end(self, state: JobState) -> None:
        self._set_state(state)
        if state is JobState.FINISHED:
            self.finished.emit(self.result)
        elif state is JobState.FAILED:
            self.failed.emit(self.error)
        elif state is JobState.PAUSED:
            self.paused.emit()
        else:
            self.cancelled.emit()

    def _set_state(self, state: JobState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state)

    # -- on the worker thread ---------------------------------------------------------------
    def _execute(self) -> None:
        self._report.emit("started", None)
        try:
            self.token.raise_if_cancelled()
            result = self.run(_Forwarder(self), self.token)
        except Cancelled:
            self._report.emit("stopped", None)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user, not kill the thread
            self._report.emit("failed", describe_error(exc, self.output))
        else:
            self._report.emit("finished", result)


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

    def __init__(self, job: Job) -> None:
        self._job = job
        self._last = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        final = event.total > 0 and event.done >= event.total
        if event.payload or event.message or final or now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self._job._report.emit("progress", event)


class _JobThread(threading.Thread):
    """The runner's thread. A daemon: a window torn down without :meth:`JobRunner.shutdown`
    (a test, a crash dialog) must not abort the process, as a running QThread's destructor does."""

    def __init__(self, runner: JobRunner, torch_threads: int) -> None:
        super().__init__(name="losslab-jobs", daemon=True)
        self._runner = runner
        self._torch_threads = torch_threads
        self.jobs: queue.Queue[Job | None] = queue.Queue()

    def run(self) -> None:
        if self._torch_threads:
            import torch  # the job's numeric work lives here, never on the GUI thread

            torch.set_num_threads(self._torch_threads)  # process-wide: only the main runner sets it
        while (job := self.jobs.get()) is not None:
            self._runner._run_one(job)


class JobRunner(QObject):
    """Runs submitted jobs one after the other on one background thread.

    Its own signals only say which job starts and when the queue empties (for a status bar);
    everything about one job comes from that job's handle.
    """

    job_queued = Signal(object)  # Job
    job_started = Signal(object)  # Job
    idle = Signal()
    _done = Signal(object)  # Job: crosses to the GUI thread after the job's last report

    def __init__(self, parent: QObject | None = None, torch_threads: int | None = None) -> None:
        super().__init__(parent)
        self._thread = _JobThread(self, worker_threads() if torch_threads is None else torch_threads)
        self._pending: list[Job] = []  # submitted, not ended: the running one first
        self.current: Job | None = None
        self._outstanding = 0  # submitted jobs the thread has not finished with (thread-safe count)
        self._outstanding_changed = threading.Condition()
        self._done.connect(self._job_done)
        jobs = self._thread.jobs  # not self: the hook runs while the runner is being destroyed
        self.destroyed.connect(lambda *_: jobs.put(None))  # a runner torn down with its window ends its thread
        self._thread.start()

    @property
    def busy(self) -> bool:
        return any(job.state.is_active for job in self._pending)

    def submit(self, job: Job) -> Job:
        """Queue ``job``; returns it (the handle to connect to and to pause or cancel)."""
        self._pending.append(job)
        with self._outstanding_changed:
            self._outstanding += 1
        self._thread.jobs.put(job)
        self.job_queued.emit(job)
        return job

    def cancel_all(self) -> None:
        for job in list(self._pending):
            job.cancel()

    def wait_done(self, timeout_ms: int = 30000) -> bool:
        """Block until the thread has run every submitted job; their signals then arrive with
        the next event processing. True when it happened in time."""
        with self._outstanding_changed:
            return self._outstanding_changed.wait_for(lambda: self._outstanding == 0, timeout_ms / 1000)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything and stop the thread; True when it stopped in time."""
        self.cancel_all()
        self._thread.jobs.put(None)
        self._thread.join(timeout_ms / 1000)
        return not self._thread.is_alive()

    def _run_one(self, job: Job) -> None:
        # Runs on the worker thread. A job stopped while queued has ended on the GUI thread.
        if not job.token.cancelled:
            self.current = job
            self.job_started.emit(job)
            job._execute()
            self.current = None
        try:
            self._done.emit(job)
        except RuntimeError:  # the runner was destroyed (its window closed) while the job ran
            pass
        with self._outstanding_changed:
            self._outstanding -= 1
            self._outstanding_changed.notify_all()

    def _job_done(self, job: Job) -> None:
        if job in self._pending:
            self._pending.remove(job)
        if not self._pending:
            self.idle.emit()


EngineWorker = JobRunner  # the name the app used before jobs had their own handles
