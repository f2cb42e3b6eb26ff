"""Wait for a child process's progress lines instead of polling the file it writes.

Polling the HDF5 file races with the writer (h5py's file lock refuses the reader while the
writer holds it, and a fast machine finishes the job between two polls); the progress line of
an epoch is printed only after that epoch's checkpoint is flushed, so it is a safe moment to
interrupt.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable


def start_with_stderr(command: list[str], cwd: object) -> tuple[subprocess.Popen, queue.Queue]:
    """Start ``command`` with its stderr read line by line (``\\r``-redrawn lines split) on a thread."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in process.stderr:
            for part in line.split("\r"):
                lines.put(part.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def wait_for_line(lines: queue.Queue, wanted: Callable[[str], bool], timeout: float = 120) -> str:
    """Return the first line for which ``wanted`` is true; fail if the process ends or time runs out."""
    deadline, seen = time.monotonic() + timeout, []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            raise AssertionError("the process ended before the awaited line:\n" + "\n".join(seen[-20:]))
        seen.append(line)
        if wanted(line):
            return line
    raise AssertionError("no awaited line in time:\n" + "\n".join(seen[-20:]))


def epoch_at_least(number: int, prefix: str = "epoch") -> Callable[[str], bool]:
    """Matches ``"<prefix> N/total ..."`` with N >= ``number``."""

    def matches(line: str) -> bool:
        if not line.startswith(prefix + " "):
            return False
        head = line[len(prefix):].split("/")[0].strip()
        return head.isdigit() and int(head) >= number

    return matches
