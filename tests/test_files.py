"""Atomic writes: all or nothing, with the permissions a plain write would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nlzoo.files import atomic_write, atomic_write_bytes, atomic_write_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode_not_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "sub" / "a.json", "{}")
    finally:
        os.umask(old)
    assert path.read_text() == "{}" and _mode(path) == 0o644


def test_replacing_keeps_the_old_mode_and_leaves_no_sibling(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp.name)
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert seen[0].startswith(".model.onnx.") and seen[0].endswith(".tmp.onnx")  # writers that check the suffix
