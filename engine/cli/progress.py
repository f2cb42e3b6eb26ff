"""A terminal progress line for engine events (no extra dependency)."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.events import ProgressEvent


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressPrinter:
    """Draws ``stage [#####.....] done/total elapsed<eta`` and prints per-epoch lines."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self._live = self.stream.isatty()
        self._last_tenth = -1

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            self._clear()
            print(event.message, file=self.stream, flush=True)
        filled = int(self.width * event.fraction)
        bar = "#" * filled + "." * (self.width - filled)
        line = (f"{event.stage} [{bar}] {event.done}/{event.total} "
                f"{_clock(event.elapsed)}<{_clock(event.eta_seconds)}")
        if self._live:
            print("\r" + line, end="", file=self.stream, flush=True)
            if event.done >= event.total:
                print(file=self.stream, flush=True)
        else:
            tenth = int(10 * event.fraction)
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                print(line, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self._live:
            print("\r" + " " * (self.width + 60) + "\r", end="", file=self.stream)
