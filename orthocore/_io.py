"""Atomic file writes: every file orthocore writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch


def _umask() -> int:
    """The process's umask (reading it means setting it: it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside ``path``; renames it over ``path`` when the block
    succeeds and deletes it when the block raises.

    The rename is atomic on POSIX, so a reader (or a run killed with SIGKILL midway) sees
    either the old file or the complete new one, never a half-written file. The file gets
    the permissions any new file would (``0o666`` less the umask), not the temporary
    file's private ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path`` (see :func:`atomic_path`),
    syncs it to disk, then renames it over ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`.

    Raises:
        OSError: when the file cannot be written (a full disk, a read-only folder):
            torch's writer reports that as a ``RuntimeError``; the old file is kept.
    """

    def save(file: IO[bytes]) -> None:
        try:
            torch.save(obj, file)
        except RuntimeError as error:
            if "write" not in str(error).lower():
                raise
            reason = str(error).splitlines()[-1].strip() or "write failed"
            raise OSError(f"{str(path)!r} could not be written (disk full or not writable?): {reason}") from None

    atomic_write(path, save)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
