"""Reading HDF5 files that may be incomplete, damaged or hostile: every missing group, dataset or
attribute becomes a RunFileError naming the file and what is missing, and a dataset's declared
shape and dtype are checked before any of its data is read (a header may declare 10^12 elements).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.device import available_memory
from engine.errors import RunFileError

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: no strings, objects or references
MEMORY_SHARE = 0.5


def _where(path: str | Path) -> str:
    return f"'{path}'"


def member(f: h5py.Group, name: str, path: str | Path, what: str = "") -> h5py.Group | h5py.Dataset:
    """``f[name]`` or a RunFileError naming the file and the missing member."""
    try:
        found = f.get(name)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise RunFileError(f"{_where(path)}: '{name}' cannot be read ({exc}); the file is damaged") from exc
    if found is None:
        hint = f" ({what})" if what else ""
        full = name if name.startswith("/") else f"{f.name.rstrip('/')}/{name}"
        raise RunFileError(f"{_where(path)}: '{full}' is missing{hint}; the file is incomplete or was not "
                           "written by LossLab")
    return found


def group(f: h5py.Group, name: str, path: str | Path, what: str = "") -> h5py.Group:
    found = member(f, name, path, what)
    if not isinstance(found, h5py.Group):
        raise RunFileError(f"{_where(path)}: '{name}' is a dataset; expected a group")
    return found


def attr(obj: h5py.HLObject, name: str, path: str | Path, what: str = "") -> Any:
    """An attribute (bytes decoded, numpy scalars as Python values) or a RunFileError."""
    if name not in obj.attrs:
        where = obj.name if obj.name not in ("/", None) else "the file"
        hint = f" ({what})" if what else ""
        raise RunFileError(f"{_where(path)}: attribute '{name}' of {where} is missing{hint}")
    try:
        value = obj.attrs[name]
    except (OSError, RuntimeError, TypeError) as exc:
        raise RunFileError(f"{_where(path)}: attribute '{name}' cannot be read ({exc})") from exc
    return plain(value)


def plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def element_limit(itemsize: int) -> int:
    """How many elements of ``itemsize`` bytes one dataset may have: a share of available memory."""
    return max(int(available_memory() * MEMORY_SHARE) // max(itemsize, 1), 1)


def check_dataset(d: h5py.Dataset, path: str | Path, *, kinds: str = NUMERIC_KINDS, ndim: int | None = None,
                  size: int | None = None) -> h5py.Dataset:
    """Refuse a dataset of the wrong dtype kind, rank or size before reading it."""
    if not isinstance(d, h5py.Dataset):
        raise RunFileError(f"{_where(path)}: '{d.name}' is a group; expected a dataset")
    if d.dtype.kind not in kinds:
        raise RunFileError(f"{_where(path)}: '{d.name}' has dtype {d.dtype}; expected "
                           + ("numbers" if kinds == NUMERIC_KINDS else f"dtype kind in {kinds!r}"))
    if ndim is not None and len(d.shape or ()) != ndim:
        raise RunFileError(f"{_where(path)}: '{d.name}' has shape {d.shape}; expected {ndim} axes")
    elements = int(np.prod(d.shape or (), dtype=np.float64)) if d.shape is not None else 0
    if size is not None and elements != size:
        raise RunFileError(f"{_where(path)}: '{d.name}' has {elements} values; expected {size}")
    limit = element_limit(d.dtype.itemsize)
    if elements > limit:
        raise RunFileError(f"{_where(path)}: '{d.name}' declares shape {d.shape} ({elements:.3g} values), more "
                           f"than this machine can hold (at most {limit:.3g}); not read")
    return d


def read(f: h5py.Group, name: str, path: str | Path, *, kinds: str = NUMERIC_KINDS, ndim: int | None = None,
         size: int | None = None, what: str = "") -> np.ndarray:
    """The checked contents of dataset ``name`` as a numpy array."""
    d = check_dataset(member(f, name, path, what), path, kinds=kinds, ndim=ndim, size=size)
    try:
        return np.asarray(d[()])
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise RunFileError(f"{_where(path)}: '{d.name}' cannot be read ({exc}); the file is damaged") from exc


WRITE_MARGIN = 256 * 1024  # HDF5 metadata around a write


def ensure_free_space(path: str | Path, nbytes: int, kept: str = "nothing was written") -> None:
    """Refuse a write of about ``nbytes`` to ``path`` that would not fit on its disk: HDF5 cannot
    recover from a failed write, so it must not start."""
    from engine.errors import OutputError

    folder = Path(path).parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    needed = int(nbytes * 1.1) + WRITE_MARGIN
    if free < needed:
        raise OutputError(f"'{path}': cannot write: the disk is full ({free / 2**20:.1f} MiB free, about "
                          f"{needed / 2**20:.1f} MiB needed); {kept}")


def check_writable_folder(path: str | Path, advice: str = "choose another --out") -> None:
    """Create ``path``'s folder if needed and prove a file can be made there (``os.access`` says yes to
    root even on a read-only mount; a real file says the truth)."""
    from engine.errors import output_error

    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise output_error(folder, exc, advice) from exc
