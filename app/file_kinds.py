"""Which kind of file a user opened: a run, a surface or an experiment (Qt-free)."""

from __future__ import annotations

from pathlib import Path

import h5py

from engine.errors import LossLabError, RunFileError
from engine.landscape.directions.curve import CURVE_FORMAT
from engine.storage.runfile import RUN_FORMAT
from engine.study.record import RECORD, read_record

SURFACE_FILTER = "Run or surface (*.h5 *.hdf5)"
OPEN_FILTER = ";;".join(["LossLab files (*.h5 *.hdf5 *.toml *.losslab.json study.json)", SURFACE_FILTER,
                         "Experiment (*.toml)", "Study folder (study.json)", "All files (*)"])


# HDF5's own wording (what h5py raises) -> what it means to the person opening the file.
HDF5_REASONS = (
    ("file signature not found", "it is not an HDF5 file (another format, or damaged)"),
    ("truncated", "the file is shorter than it should be (copied or written incompletely)"),
    ("permission denied", "you have no permission to read it"),
    ("lock", "another program is writing it; try again when it has finished"),
)


def hdf5_reason(exc: OSError) -> str:
    """Why an HDF5 file could not be opened, in words (HDF5's message only when none fits)."""
    text = str(exc).lower()
    return next((words for marker, words in HDF5_REASONS if marker in text), f"HDF5 says: {exc}")


def classify_file(path: str | Path) -> str:
    """``"experiment"`` for .toml, ``"study"`` for a study folder's ``study.json``, ``"run"`` for a
    LossLab run file, ``"curve"`` for a curve file of Connect two runs, else ``"surface"`` for HDF5.

    Surface files (LossLab's and loss-landscape's) are told apart by the surface reader itself.
    """
    path = Path(path)
    if not path.is_file():
        raise LossLabError(f"'{path}': file not found")
    if path.suffix.lower() == ".toml":
        return "experiment"
    if path.suffix.lower() == ".json":
        if path.name != RECORD or read_record(path.parent) is None:
            raise RunFileError(f"'{path}': not a study record (a study folder's {RECORD}, written by losslab study)")
        return "study"
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", "")
    except OSError as exc:
        raise RunFileError(f"'{path}': cannot be opened as a run, surface (.h5) or experiment (.toml) file: "
                           f"{hdf5_reason(exc)}") from exc
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt == CURVE_FORMAT:
        return "curve"
    return "run" if fmt == RUN_FORMAT else "surface"
