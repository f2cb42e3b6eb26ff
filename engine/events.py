"""Progress events and cancellation shared by every long job (training, surfaces, exports).

Engine functions take ``on_event: EventSink`` and ``cancel: CancelToken``; the CLI prints
the events, the app turns them into Qt signals. Nothing here knows about either client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import LossLabError


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long job: ``done`` of ``total`` units of ``stage`` after ``elapsed`` s."""

    stage: str
    done: int
    total: int
    elapsed: float
    message: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        if self.done <= 0 or self.total <= 0:
            return None
        return self.elapsed * (self.total - self.done) / self.done


EventSink = Callable[[ProgressEvent], None]


def ignore_events(event: ProgressEvent) -> None:
    """The default sink: a library call with no listener."""


class Cancelled(LossLabError):
    """The job was cancelled by the user; everything computed so far is kept."""


class CancelToken:
    """Thread-safe flag a client sets to stop a job at its next safe point."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user; results so far were saved")


class Stopwatch:
    """Elapsed seconds since construction, for ``ProgressEvent.elapsed``."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self._start
