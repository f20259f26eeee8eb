"""The IDX file format of MNIST and its kin (Fashion-MNIST, KMNIST, EMNIST), read checked.

An IDX file is a 4-byte magic number — two zero bytes, a type code and the number of
dimensions — then each dimension as a big-endian 32-bit integer, then the values in
row-major order, big-endian. The files are read whole, gzipped (``NAME.gz``) or not;
every fact the header states is checked against the bytes before any value is used:
the magic, the type, the number of dimensions the caller expects, and a size of
exactly header + values (a truncated or padded file is named with both sizes).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The type codes of the format, as numpy's big-endian dtypes.
TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip


@dataclass(frozen=True)
class IdxArray:
    """The values of one IDX file and the SHA-256 of its uncompressed bytes.

    Attributes:
        values: the array, of the file's dimensions and type (native byte order).
        sha256: hex digest of the uncompressed file (what a known release is checked by).
    """

    values: np.ndarray
    sha256: str


def read_idx(path: str | os.PathLike, ndim: int) -> IdxArray:
    """Reads the IDX file ``path`` (``.gz`` decompressed), which must have ``ndim`` dimensions.

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: naming the file and what was expected: an empty, truncated or
            over-long file, a bad gzip stream, another magic number, type or number of
            dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # gzip reports a cut stream as EOFError
        raise ValueError(f"{path}: is not a whole gzip file ({error})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: is {'empty' if not raw else f'{len(raw)} bytes'}; expected an IDX file "
                         f"(a 4-byte magic number, then the dimensions and the values)")  # fmt: skip
    if raw[0] or raw[1] or raw[2] not in TYPES:
        raise ValueError(f"{path}: starts with {raw[:4].hex()}, not an IDX magic number (00 00, a type code in "
                         f"{', '.join(f'{code:02x}' for code in TYPES)}, the number of dimensions)")  # fmt: skip
    dtype, dims = TYPES[raw[2]], raw[3]
    if dims != ndim:
        raise ValueError(f"{path}: has {dims} dimension(s); expected {ndim}")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise ValueError(f"{path}: is truncated inside its header ({len(raw)} bytes, the header alone is {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=dims, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"{path}: is {state}: {len(raw):,} bytes (uncompressed) where its header "
                         f"{'×'.join(map(str, shape))} of {dtype.name} needs {expected:,}")  # fmt: skip
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
    return IdxArray(values, hashlib.sha256(raw).hexdigest())
