"""Errors a user can act on: each names the file or field, what was found and what is allowed."""

from __future__ import annotations

import errno
from pathlib import Path


class LossLabError(Exception):
    """Base class for every error LossLab reports to a user."""


class ConfigError(LossLabError):
    """An experiment file or option holds a value that is not allowed."""

    def __init__(self, key: str, value: object, allowed: str, source: str = "") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key} = {value!r} is not valid; expected {allowed}")


class DataError(LossLabError):
    """A data set folder or file is missing or not in the expected layout."""


class RunFileError(LossLabError):
    """A run or surface file is missing, corrupt or from another model."""


class TrainingError(LossLabError):
    """Training could not go on (e.g. the loss became NaN)."""


class OutputError(LossLabError):
    """A file could not be written: disk full, no permission, a folder in the way, ..."""


class UnsafeFileError(RunFileError, DataError):
    """A file asks to run code or build objects a data file never needs; it was not loaded."""


_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def os_reason(exc: OSError) -> str:
    """A short, plain reason for an operating-system error (no errno numbers)."""
    if exc.errno in _OS_REASONS:
        return _OS_REASONS[exc.errno]
    text = str(exc)
    for code, reason in _OS_REASONS.items():
        if code == errno.ENOSPC and "No space left" in text:
            return reason
    return exc.strerror or text or type(exc).__name__


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also when h5py only keeps the message text."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def output_error(path: str | Path, exc: OSError, kept: str = "") -> OutputError:
    """An OutputError naming ``path``, the reason and (optionally) what was kept."""
    reason = "the disk is full" if is_disk_full(exc) else os_reason(exc)
    tail = f"; {kept}" if kept else ""
    return OutputError(f"'{path}': cannot write: {reason}{tail}")
