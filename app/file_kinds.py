"""Which kind of file a user opened: a run, a surface or an experiment (Qt-free)."""

from __future__ import annotations

from pathlib import Path

import h5py

from engine.errors import LossLabError, RunFileError
from engine.storage.runfile import RUN_FORMAT

SURFACE_FILTER = "Run or surface (*.h5 *.hdf5)"
OPEN_FILTER = ";;".join(["LossLab files (*.h5 *.hdf5 *.toml)", SURFACE_FILTER, "Experiment (*.toml)",
                         "All files (*)"])


def classify_file(path: str | Path) -> str:
    """``"experiment"`` for .toml, ``"run"`` for a LossLab run file, else ``"surface"`` for HDF5.

    Surface files (LossLab's and loss-landscape's) are told apart by the surface reader itself.
    """
    path = Path(path)
    if not path.is_file():
        raise LossLabError(f"'{path}': file not found")
    if path.suffix.lower() == ".toml":
        return "experiment"
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", "")
    except OSError as exc:
        raise RunFileError(f"'{path}': not a run, surface (.h5) or experiment (.toml) file ({exc})") from exc
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    return "run" if fmt == RUN_FORMAT else "surface"
