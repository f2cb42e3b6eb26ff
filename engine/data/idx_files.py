"""MNIST-style idx files (plain or gzip), read with their header checked before any data.

An idx file starts with two zero bytes, a type code, the number of dimensions and one
big-endian uint32 per dimension; the values follow. The header declares the size, so a file is
refused before reading when it declares more than :data:`MAX_IDX_BYTES` (a small .gz can
otherwise expand to any size), and when its contents are shorter or longer than declared.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.errors import DataError

# EMNIST ByClass, the largest MNIST-like set, has 0.55 GB of training images; 4 GiB leaves room
# for larger user sets while a crafted header cannot make LossLab allocate without limit.
MAX_IDX_BYTES = 4 << 30
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
READ_CHUNK = 1 << 24


def read_idx(path: Path, dimensions: int) -> np.ndarray:
    """The array in ``path`` (``.gz`` decompressed on the fly), which must have ``dimensions`` axes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            dtype, shape = _header(stream, path, dimensions)
            payload = _payload(stream, path, math.prod(shape) * np.dtype(dtype).itemsize)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"'{path}': not a readable idx file ({exc})") from exc
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(np.dtype(dtype).newbyteorder("="))


def _header(stream: BinaryIO, path: Path, dimensions: int) -> tuple[str, tuple[int, ...]]:
    magic = stream.read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] not in IDX_TYPES:
        raise DataError(f"'{path}': not a valid idx file (found header bytes {magic.hex() or 'none'}; an idx "
                        f"file starts with 00 00, a type code in {sorted(hex(t) for t in IDX_TYPES)} and its rank)")
    if magic[3] != dimensions:
        raise DataError(f"'{path}': not a valid idx file (it has {magic[3]} dimensions, expected {dimensions})")
    raw = stream.read(4 * dimensions)
    if len(raw) < 4 * dimensions:
        raise DataError(f"'{path}': not a valid idx file (its header ends after {len(raw)} of "
                        f"{4 * dimensions} size bytes)")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4"))
    dtype = IDX_TYPES[magic[2]]
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if size > MAX_IDX_BYTES:
        raise DataError(f"'{path}': its header declares {' x '.join(map(str, shape))} values ({size / 2**30:.1f} GiB); "
                        f"LossLab reads idx files of at most {MAX_IDX_BYTES / 2**30:.0f} GiB")
    return dtype, shape


def _payload(stream: BinaryIO, path: Path, size: int) -> bytes:
    """Exactly ``size`` bytes, read in chunks so that a lying file never costs more than it declared."""
    parts, left = [], size
    while left > 0:
        part = stream.read(min(READ_CHUNK, left))
        if not part:
            raise DataError(f"'{path}': not a valid idx file (it ends after {size - left:,} of the {size:,} "
                            f"data bytes its header declares)")
        parts.append(part)
        left -= len(part)
    if stream.read(1):
        raise DataError(f"'{path}': not a valid idx file (it is longer than the {size:,} data bytes its "
                        f"header declares)")
    return b"".join(parts)
