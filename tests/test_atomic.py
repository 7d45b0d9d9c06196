"""Atomic writes: the old file survives a failed write, no temporary file is left, permissions are ordinary."""

import os
import stat

import pytest

from hiertok.atomic import atomic_write, atomic_write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "config.yaml"
    atomic_write_text(path, "old\n")

    def half(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_written_files_get_the_umask_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
