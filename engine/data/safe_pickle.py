"""A pickle reader that builds only plain data: the CIFAR-10 python batches need nothing else.

``pickle.load`` can call any importable function, so a tampered data file could run code. This
unpickler resolves only the globals that plain containers and numpy arrays need; anything else
(``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) is refused before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from engine.errors import DataError, UnsafeFileError

# (module, name) pairs a pickled dict of numpy arrays, lists, bytes and numbers refers to.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
    ("builtins", "str"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("builtins", "tuple"),
    ("__builtin__", "list"),
    ("__builtin__", "dict"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """Refuses every global outside :data:`ALLOWED_GLOBALS`; never imports anything else."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeFileError(
                f"'{self.source}': refused to load: the file asks to call {module}.{name}, which a data "
                "file never needs (it could run code); nothing from it was executed. Replace the file "
                "with an original copy."
            )
        return super().find_class(module, name)


def load_plain_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` admitting only plain containers and numpy arrays."""
    with open(path, "rb") as raw:
        try:
            return RestrictedUnpickler(raw, str(path)).load()
        except UnsafeFileError:
            raise
        except Exception as exc:  # truncated or garbled pickles raise many types
            raise DataError(f"'{path}': not a readable pickle of plain data ({type(exc).__name__}: "
                                  f"{exc})") from exc
