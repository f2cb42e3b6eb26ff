"""Errors a user can act on: each names the file or field, what was found and what is allowed."""

from __future__ import annotations


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
