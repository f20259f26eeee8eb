"""A restricted unpickler for data files that come as pickles (CIFAR-10's python batches).

``pickle.load`` can call any importable function, so a crafted data file could run code.
:func:`safe_load` resolves only the few globals that rebuild NumPy arrays; every other
global (``os.system``, ``builtins.eval``, any class) is refused before it is looked up,
and the arrays it returns must hold numbers, never Python objects.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

# The globals a pickled numpy array refers to (numpy 1 and numpy 2 module names).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, strings, bytes, numbers and numeric NumPy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: data pickles may hold only plain "
                "dicts, lists, strings, numbers and numeric arrays"
            )
        return super().find_class(module, name)


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise pickle.UnpicklingError(f"refused {where}: an array of Python objects, expected numbers")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")


def safe_load(path: str | os.PathLike, encoding: str = "bytes") -> Any:
    """Reads a pickle file with :class:`RestrictedUnpickler`.

    Args:
        path: the file.
        encoding: how Python 2 ``str`` objects are decoded (``"bytes"`` keeps them as
            bytes, as CIFAR-10's official files need).

    Raises:
        pickle.UnpicklingError: the file names a forbidden global or holds object arrays;
            the message names ``path``.
        ValueError: the file is empty, truncated or not a pickle (naming ``path``).
    """
    with open(path, "rb") as file:
        data = file.read()
    if not data:
        raise ValueError(f"{os.fspath(path)}: the file is empty (0 bytes); expected a pickle file")
    try:
        value = RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
        _check_plain(value, "value")
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(f"{os.fspath(path)}: {error}") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, UnicodeDecodeError) as error:
        # what the pickle machine raises on cut-off or foreign bytes
        raise ValueError(f"{os.fspath(path)}: truncated or not a pickle file ({type(error).__name__}: {error}; "
                         f"{len(data):,} bytes)") from None  # fmt: skip
    return value
