"""How long the GUI event loop is held up: a QTimer that notes how late each tick fires.

Used by tests and benchmarks while a background job runs; a responsive window keeps
the worst lateness well under 100 ms.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QEventLoop, Qt, QTimer


def measure_event_loop_stall(duration_s: float, interval_ms: int = 10) -> dict[str, float]:
    """Run the event loop for ``duration_s`` and report timer lateness in milliseconds.

    Returns ``ticks``, ``max_ms``, ``p99_ms``, ``p50_ms`` and ``mean_ms``. Lateness of a
    tick is the gap since the previous tick minus the requested interval.
    """
    loop = QEventLoop()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0 - interval_ms)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    QTimer.singleShot(int(duration_s * 1000), loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    late = np.clip(np.asarray(gaps or [0.0]), 0.0, None)
    return {
        "ticks": float(len(gaps)),
        "max_ms": float(late.max()),
        "p99_ms": float(np.percentile(late, 99)),
        "p50_ms": float(np.percentile(late, 50)),
        "mean_ms": float(late.mean()),
    }

