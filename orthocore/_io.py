"""Files written whole and read back checked.

Every file orthocore writes appears whole or not at all (a temporary file renamed over
it). A file that is cached and reused later (a trained model, a training state, the
reference-gradient cache) can also be *sealed*: its SHA-256 is written beside it as
``NAME.sha256``, in ``sha256sum``'s format (``sha256sum -c NAME.sha256`` checks it too;
while a sealed file is being replaced its seal briefly lists the old and the new digest).
:func:`seal_problem` says whether a sealed file still has the bytes it was written
with, and :func:`move_aside` puts a damaged cached file out of the way (renamed, never
deleted) with a one-line warning, so that it is computed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
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


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, seal: bool = False) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path`` (see :func:`atomic_path`),
    syncs it to disk, then renames it over ``path``; ``seal`` also writes its digest.

    A sealed file is replaced in three atomic steps, so that a process killed at any
    point leaves a file its seal accepts: the seal first accepts the old and the new
    digest, then the file is renamed into place, then the seal accepts the new one only.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if seal:
            new = sha256_of(tmp)
            old = _sealed_digests(path)[:1] or ([sha256_of(path)] if path.is_file() else [])
            _write_seal(path, [new, *old])
    if seal:
        _write_seal(path, [new])


SEAL_SUFFIX = ".sha256"


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal_path(path: str | os.PathLike) -> Path:
    """Where the digest of ``path`` is kept: ``path`` + ``.sha256``."""
    return Path(os.fspath(path) + SEAL_SUFFIX)


def _write_seal(path: Path, digests: list[str]) -> None:
    atomic_write_text(seal_path(path), "".join(f"{digest}  {path.name}\n" for digest in digests))


def _sealed_digests(path: Path) -> list[str]:
    """The digests the seal of ``path`` accepts (none when it has no seal)."""
    seal = seal_path(path)
    if not seal.is_file():
        return []
    return [line.split()[0] for line in seal.read_text(errors="replace").splitlines() if line.split()]


def seal_file(path: str | os.PathLike) -> None:
    """Writes the SHA-256 of ``path`` beside it (atomically), as ``sha256sum`` prints it,
    for a file already in place (the reference-gradient cache, filled on disk). A crash
    between the file's rename and its seal leaves a seal that does not match: the file
    then reads as damaged and is computed again, never trusted."""
    path = Path(path)
    _write_seal(path, [sha256_of(path)])


def seal_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a file that may have been sealed, or None: a file whose seal
    is missing (written before seals, or never sealed) is judged by its parse alone."""
    path, seal = Path(path), seal_path(path)
    if not seal.is_file():
        return None
    recorded = _sealed_digests(path)
    if not recorded or any(len(digest) != 64 for digest in recorded):
        return f"its seal {seal.name} is unreadable"
    size = path.stat().st_size
    if size == 0:
        return "it is empty"
    if sha256_of(path) not in recorded:
        return f"its bytes ({size:,}) differ from those its seal {seal.name} recorded"
    return None


def move_aside(path: str | os.PathLike, reason: str) -> Path:
    """Renames a damaged cached file (and its seal) to ``NAME.damaged`` (``.damaged-2``, …
    when taken) and warns in one line, naming it, the reason and where it went; returns
    the new path. Nothing is deleted: the damaged bytes stay for inspection."""
    path = Path(path)
    target, n = path.with_name(path.name + ".damaged"), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{n}")
    os.replace(path, target)
    seal = seal_path(path)
    if seal.exists():
        os.replace(seal, seal_path(target))
    warnings.warn(f"{str(path)!r} is damaged ({reason}); moved to {target.name} and computed again")
    return target


def atomic_torch_save(obj: Any, path: str | os.PathLike, *, seal: bool = False) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write` (``seal``: with its digest).

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

    atomic_write(path, save, seal=seal)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
