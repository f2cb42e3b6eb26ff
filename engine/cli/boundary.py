"""The command line's one error boundary: every failure becomes one message and an exit code.

Failures a user can cause (``LossLabError``, file-system errors, memory) print one line naming
the file or field and exit 2. Anything else is a bug: the traceback goes to a log file whose
path is printed, and to the terminal only with ``--debug``.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from engine.errors import LossLabError, is_disk_full, os_reason
from engine.events import Cancelled

USER_ERROR = 2
INTERRUPTED = 130


def guarded(job: Callable[[], int], *, debug: bool = False, command: str = "") -> int:
    """Run ``job`` and turn every exception into a message and an exit code."""
    try:
        return job()
    except Cancelled as exc:
        return _fail(f"losslab: {exc}", INTERRUPTED, debug)
    except KeyboardInterrupt:
        return _fail("losslab: interrupted; completed work was saved", INTERRUPTED, debug)
    except BrokenPipeError:
        return 0  # `losslab info run.h5 | head`: the reader has what it wanted
    except LossLabError as exc:
        return _fail(f"losslab: error: {exc}", USER_ERROR, debug)
    except OSError as exc:
        return _fail(f"losslab: error: {describe_os_error(exc)}", USER_ERROR, debug)
    except MemoryError:
        return _fail("losslab: error: out of memory; choose smaller sizes (grid points, batch size, "
                     "train_limit) or free memory", USER_ERROR, debug)
    except Exception:
        log = write_log(command)
        if debug:
            traceback.print_exc()
        print(f"losslab: internal error (a bug in LossLab, not in your input); the details are in {log}",
              file=sys.stderr)
        return 1


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def describe_os_error(exc: OSError) -> str:
    """``'path': reason`` for an error the operating system (or HDF5) reported."""
    name = exc.filename or ""
    reason = "the disk is full" if is_disk_full(exc) else os_reason(exc)
    return f"'{name}': {reason}" if name else f"{reason} ({exc})"


def log_dir() -> Path:
    """``$XDG_STATE_HOME/losslab`` (default ``~/.local/state/losslab``)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "losslab"


def write_log(command: str) -> Path:
    """Append the current exception's traceback to the error log; returns the log's path."""
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = f"--- {stamp} losslab {command} (argv: {' '.join(sys.argv)})\n{traceback.format_exc()}\n"
    for folder in (log_dir(), Path(tempfile.gettempdir()) / "losslab"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "errors.log"
            with open(path, "a", encoding="utf-8") as out:
                out.write(text)
            return path
        except OSError:
            continue  # an unwritable state folder must not hide the original error
    return Path("(no writable log folder)")
