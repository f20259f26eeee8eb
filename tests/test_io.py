"""Atomic writes: whole files only, with the permissions the umask gives new files."""

import os
import stat

import pytest

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
