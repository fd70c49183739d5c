"""Files written atomically: a temporary sibling renamed over the target, so that a reader, or a run cut off
half-way, sees the old file or the new one and never a part of it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError


def make_out_dir(path: str | os.PathLike[str], *, flag: str = "--out") -> Path:
    """Create the output folder ``path`` (and its parents) and make sure files can be written in it, before any
    work is done: a path that cannot be a folder fails in one line instead of after minutes of computing.

    Raises:
        ConfigError: ``path`` is a file, lies under a file, or cannot be created or written (the reason is given).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; give a folder (it is created)")
    _writable_folder(path, f"{flag} {path}: cannot create or write this folder")
    return path


def check_out_file(path: str | os.PathLike[str], *, flag: str = "--out") -> Path:
    """Make sure ``path`` can be written as a file before any work: not a folder, in a folder that exists or
    can be created (it is created) and written.

    Raises:
        ConfigError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name")
    _writable_folder(path.parent, f"{flag} {path}: cannot write in {path.parent}")
    return path


def _writable_folder(folder: Path, problem: str) -> None:
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"{problem} ({blocker} is a file); give a path in a folder you can write")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _create_sibling(folder / "probe").unlink()  # what the atomic writes will do there
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(f"{problem} ({reason}); give a path in a folder you can write") from None


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``; returns ``path``.

    The temporary name ends in ``.tmp`` plus ``path``'s suffix (``.tmp.onnx``), for writers that look at the
    extension. The file gets ``path``'s permissions if it exists, else those a plain ``open`` gives (mode 0666
    less the umask; ``tempfile.mkstemp`` would make it owner-only). On any error the temporary file is removed
    and the error raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_sibling(path)
    try:
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _create_sibling(path: Path) -> Path:
    """A new empty hidden file beside ``path``, created exclusively with mode 0666 (the kernel applies umask)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
