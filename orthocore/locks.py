"""One job per output: the exclusive lock every command takes on what it writes.

A run folder is owned by one job at a time. :func:`output_lock` takes an exclusive
``flock`` on a lock file — ``FOLDER/.orthocore.lock`` for a folder, ``.NAME.lock``
beside it for the files a command writes under a name (``attack --out runs/transfer``
locks ``runs/.transfer.lock``) — and writes the holder's host and pid into it:

* a second process that asks for the same lock is refused at once with
  :class:`OutputLockedError`, which names the folder and the holder, before it has
  written anything;
* the kernel releases a ``flock`` when its process dies, so the lock of a job killed
  with ``kill -9`` is free again; the record it left is read, the lock taken over, and
  one warning says whose it was;
* on release the file is deleted, so a finished folder holds no lock file, and the
  folders the lock itself created are removed again when they are left empty (a job
  refused for bad input leaves nothing behind).

The file is deleted while locked, and a process that opened it just before re-checks,
once it holds its lock, that the path still names the file it locked (the usual
``flock`` + ``unlink`` protocol), so two processes can never both believe they hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".orthocore.lock"


class OutputLockedError(OSError):
    """Another living process holds the lock on an output (an ``OSError``: the CLI
    reports it in one line and exits with status 2)."""


def lock_file(output: str | os.PathLike, *, folder: bool = True) -> Path:
    """The lock file of ``output``: inside it for a folder, beside it for a name."""
    output = Path(output)
    return output / LOCK_NAME if folder else output.parent / f".{output.name}.lock"


def _holder(text: str) -> dict | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _describe(record: dict | None) -> str:
    if not record:
        return "another process"
    return f"process {record.get('pid', '?')} on {record.get('host', '?')}"


@contextlib.contextmanager
def output_lock(output: str | os.PathLike, *, folder: bool = True, what: str = "out") -> Iterator[Path]:
    """Holds the exclusive lock on ``output`` for the block; yields the lock file.

    Args:
        output: the folder (``folder=True``, created when missing) or the path prefix of
            the files (``folder=False``; its parent folder must be creatable) the caller
            writes.
        folder: whether ``output`` is a folder of its own.
        what: the argument that named ``output``, for the messages (``"out"``).

    Raises:
        OutputLockedError: a living process holds the lock (its pid and host named).
    """
    path = lock_file(output, folder=folder)
    created = [parent for parent in [path.parent, *path.parent.parents] if not parent.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(descriptor, 4096, 0).decode("utf-8", "replace"))
            os.close(descriptor)
            raise OutputLockedError(
                f"{what}: {str(output)!r} is in use by {_describe(holder)} (lock {str(path)!r}); wait for that job "
                f"to end or choose another {what}"
            ) from None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # the holder released it (deleting it) between our open and our lock
            same = False
        if same:
            break
        os.close(descriptor)  # a file no one will look for again: open the path anew
    try:
        left = _holder(os.pread(descriptor, 4096, 0).decode("utf-8", "replace"))
        if left:
            warnings.warn(f"{what}: took over the lock on {str(output)!r} left by {_describe(left)}, which has "
                          "ended without releasing it (killed?)")  # fmt: skip
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record, 0)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still locked: a process that opened it re-checks the inode
        os.close(descriptor)
        for made in created:  # deepest first; a folder the job wrote into stays
            with contextlib.suppress(OSError):
                made.rmdir()
