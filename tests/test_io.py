"""Atomic writes: whole files only, with the permissions the umask gives new files."""

import contextlib
import os
import stat

import pytest

from orthocore import _io
from orthocore._io import atomic_write_json, atomic_write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.html", "<p>x</p>")
        atomic_write_json(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(previous)
    for name in ("report.html", "results.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "results.json"]  # no temporary files


def test_torch_writer_failures_become_one_os_error_and_keep_the_old_file(tmp_path, monkeypatch):
    import torch

    from orthocore._io import atomic_torch_save

    path = tmp_path / "state.pt"
    atomic_torch_save({"epoch": 1}, path)
    before = path.read_bytes()

    def full_disk(obj, file, *args, **kwargs):
        file.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")  # fmt: skip

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"state\.pt' could not be written \(disk full or not writable\?\)"):
        atomic_torch_save({"epoch": 2}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_cli_errors_are_one_line_unless_debug(tmp_path, capsys):
    from orthocore import cli

    missing = str(tmp_path / "missing.ckpt")
    assert cli.main(["similarity", missing, missing]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(FileNotFoundError):
        cli.main(["--debug", "similarity", missing, missing])


class _Killed(BaseException):
    """Stands in for the process being killed at that instant."""


@pytest.mark.parametrize("killed_at", [1, 2, 3, 4])
def test_a_sealed_file_is_accepted_by_its_seal_whenever_its_replacement_is_cut_off(tmp_path, monkeypatch, killed_at):
    """The replacement renames three times (the two-digest seal, the file, the one-digest
    seal); a process killed before any of them, or after all, leaves the old or the new
    file, and its seal accepts what is there."""
    path = tmp_path / "state.pt"
    _io.atomic_write(path, lambda file: file.write(b"old state"), seal=True)
    renames, rename = [], os.replace

    def replace(source, target):
        renames.append(target)
        if len(renames) == killed_at:
            raise _Killed
        rename(source, target)

    monkeypatch.setattr(_io.os, "replace", replace)
    with contextlib.suppress(_Killed):
        _io.atomic_write(path, lambda file: file.write(b"new state"), seal=True)
    monkeypatch.undo()
    assert path.read_bytes() == (b"old state" if killed_at <= 2 else b"new state")
    assert _io.seal_problem(path) is None
    assert len(renames) == min(killed_at, 3)


def test_the_seal_names_a_changed_or_emptied_file(tmp_path):
    path = tmp_path / "model.ckpt"
    _io.atomic_write(path, lambda file: file.write(b"weights" * 100), seal=True)
    assert _io.seal_problem(path) is None
    path.write_bytes(b"weights" * 99 + b"weighTs")  # one byte
    assert _io.seal_problem(path) == "its bytes (700) differ from those its seal model.ckpt.sha256 recorded"
    path.write_bytes(b"")
    assert _io.seal_problem(path) == "it is empty"
    _io.seal_path(path).write_text("garbage\n")
    assert _io.seal_problem(path) == "its seal model.ckpt.sha256 is unreadable"
    assert _io.seal_problem(tmp_path / "unsealed") is None  # judged by its parse alone
