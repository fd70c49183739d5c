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


def test_output_paths_are_checked_before_any_work(tmp_path: Path) -> None:
    import sys

    from nlzoo.errors import ConfigError
    from nlzoo.files import check_out_file, make_out_dir

    (tmp_path / "file").write_text("x")
    assert make_out_dir(tmp_path / "a" / "b").is_dir()  # parents created
    assert check_out_file(tmp_path / "c" / "x.png") == tmp_path / "c" / "x.png" and (tmp_path / "c").is_dir()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == []  # the probe is gone
    with pytest.raises(ConfigError, match=r"--out .*file is a file; give a folder"):
        make_out_dir(tmp_path / "file")
    with pytest.raises(ConfigError, match=r"cannot create or write this folder \(.*file is a file\)"):
        make_out_dir(tmp_path / "file" / "sub")
    with pytest.raises(ConfigError, match=r"OUT .* is a folder; give a file name"):
        check_out_file(tmp_path / "a", flag="OUT")
    with pytest.raises(ConfigError, match=r"cannot write in .*file \(.*file is a file\)"):
        check_out_file(tmp_path / "file" / "x.png")
    if sys.platform.startswith("linux"):  # a folder nobody may create files in, root included
        with pytest.raises(ConfigError, match=r"cannot write in /proc"):
            check_out_file("/proc/x.onnx")
