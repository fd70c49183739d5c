"""The on-disk model format, shared by local folders and Hugging Face Hub repos.

A model folder holds ``config.json`` (architecture, model_args, num_classes, label names, data config,
provenance, and the sha256 of the weights file), ``model.safetensors`` and a ``README.md`` model card.
Loading never unpickles anything, validates every config field, checks the weights against the sha256 the
config records, and never sees a half-written folder (writes are atomic).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from ..errors import ChecksumMismatchError, ConfigError, InputNotFoundError, WeightsError
from .config import ModelConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
SHA256_RE = re.compile(r"[0-9a-f]{64}")


def model_config(model: nn.Module) -> ModelConfig:
    """The :class:`ModelConfig` a zoo model carries (set by :func:`nlzoo.load`)."""
    cfg = getattr(model, "nlzoo_config", None)
    if not isinstance(cfg, ModelConfig):
        raise ConfigError(
            f"{type(model).__name__} carries no nlzoo config: build it with nlzoo.load(...) "
            "(or a task's .model) so that it can be saved and re-created by name"
        )
    return cfg


def save_pretrained(
    model: nn.Module, directory: str | os.PathLike[str], *, model_card: bool = True, repo_id: str | None = None
) -> Path:
    """Write ``config.json``, ``model.safetensors`` (and a ``README.md`` model card) as the folder ``directory``.

    This is exactly the folder :func:`nlzoo.push_to_hub` uploads. The write is atomic: the files go into a
    temporary sibling folder that then replaces ``directory`` in one rename, so a reader (or a concurrent
    writer) never sees half a folder, and a failure (disk full) leaves the previous folder untouched.

    Args:
        model: a model built by :func:`nlzoo.load` (it carries ``model.nlzoo_config``).
        directory: the folder to create or replace (its previous files are discarded).
        model_card: also write the generated model card.
        repo_id: the Hub repo the folder is meant for, named in the card's loading example.

    Returns:
        The directory path.
    """
    from .. import __version__

    cfg = model_config(model)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}

    def write(out: Path) -> None:
        # One metadata key: safetensors writes a metadata map in hash order, so two keys would make the bytes
        # (and the recorded sha256) differ between saves of the same model. The nlzoo version is in config.json.
        safetensors.torch.save_file(tensors, out / WEIGHTS_NAME, metadata={"format": "pt"})
        payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "nlzoo_version": __version__, **cfg.to_dict()}
        payload["num_features"] = getattr(model, "num_features", None)
        payload["weights_sha256"] = file_sha256(out / WEIGHTS_NAME)
        (out / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        if model_card:
            from .card import render_model_card

            card = render_model_card(cfg, repo_id=repo_id, weights_sha256=payload["weights_sha256"])
            (out / CARD_NAME).write_text(card)

    return write_folder_atomically(directory, write)


def read_config(directory: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` stored in a model folder's ``config.json``, every field validated.

    Raises:
        InputNotFoundError: no config.json.
        ConfigError: not JSON, a newer format, or a bad field (the message names it).
    """
    config_path = _required(Path(directory) / CONFIG_NAME)
    return _parse_config(config_path, config_path.read_bytes())[0]


def read_folder(
    directory: str | os.PathLike[str], *, check_digest: bool = True
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The config and weights of a model folder, with clear errors for missing, broken or altered files.

    Both files are read through one handle on the folder, so a concurrent atomic replacement (see
    :func:`save_pretrained`) can never pair one version's config with another's weights; a read that raced a
    replacement is retried. The weights are read into memory in one go (not memory-mapped), so the tensors
    never depend on the file staying where it is.

    Args:
        directory: the model folder.
        check_digest: refuse weights whose sha256 differs from the ``weights_sha256`` config.json records
            (every folder nlzoo writes records it). Off only where the caller has just checked it (Hub).

    Raises:
        InputNotFoundError: a file is missing.
        ConfigError: a bad config.json.
        ChecksumMismatchError: the weights are not the file config.json records (edited or damaged).
        WeightsError: model.safetensors is not a readable safetensors file.
    """
    path = Path(directory)
    for _attempt in range(_READ_ATTEMPTS):
        try:
            config_bytes, weights_bytes = _read_pair(path)
        except _ReplacedDuringRead:
            continue
        config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
        cfg, recorded = _parse_config(config_path, config_bytes)
        if check_digest and recorded is not None:
            found = hashlib.sha256(weights_bytes).hexdigest()
            if found != recorded:
                raise ChecksumMismatchError(
                    f"{weights_path} has sha256 {found} but {CONFIG_NAME} records {recorded}: the weights changed "
                    "after the folder was written (edited, damaged or tampered with). Re-create the folder "
                    "(nlzoo.save_pretrained, `nlzoo convert`) or download it again."
                )
        try:
            tensors = safetensors.torch.load(weights_bytes)
        except Exception as err:  # safetensors raises its own error types for truncated or corrupt files
            raise WeightsError(
                f"{weights_path} is not a readable safetensors file ({err}); re-download or re-convert it"
            ) from None
        return cfg, {key: tensors[key] for key in sorted(tensors)}  # load() returns them in hash order
    raise WeightsError(f"{path} was replaced {_READ_ATTEMPTS} times while being read; try again")


def check_weights_digest(directory: str | os.PathLike[str]) -> None:
    """Refuse a folder whose model.safetensors is not the file its config.json records (edited or damaged)."""
    read_folder(directory, check_digest=True)


_READ_ATTEMPTS = 5


class _ReplacedDuringRead(Exception):
    """The folder was atomically replaced (or removed) between opening it and reading its files."""


def _read_pair(path: Path) -> tuple[bytes, bytes]:
    """config.json and model.safetensors of one version of the folder at ``path``."""
    if not path.is_dir():
        raise InputNotFoundError(f"model folder {path} does not exist (or is not a folder)")
    if os.open not in os.supports_dir_fd:  # no dir_fd (Windows): plain reads, the digest check still guards
        return _required(path / CONFIG_NAME).read_bytes(), _required(path / WEIGHTS_NAME).read_bytes()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        raise _ReplacedDuringRead from None
    try:
        opened = os.fstat(fd)
        files = []
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            try:
                file_fd = os.open(name, os.O_RDONLY, dir_fd=fd)
            except FileNotFoundError:
                if _same_folder(path, opened):
                    _required(path / name)  # really missing: the usual error
                raise _ReplacedDuringRead from None
            with os.fdopen(file_fd, "rb") as f:
                files.append(f.read())
        return files[0], files[1]
    finally:
        os.close(fd)


def _same_folder(path: Path, opened: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _parse_config(config_path: Path, raw_bytes: bytes) -> tuple[ModelConfig, str | None]:
    try:
        raw = json.loads(raw_bytes)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{config_path} is not valid JSON ({err}); re-create the folder") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path} must hold a JSON object; got {type(raw).__name__}")
    version = raw.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"{config_path}: format_version must be a whole number; got {version!r}")
    if version > FORMAT_VERSION:
        raise ConfigError(f"{config_path} has format_version {version}; upgrade nlzoo to read it")
    recorded = raw.get("weights_sha256")
    if recorded is not None and (not isinstance(recorded, str) or not SHA256_RE.fullmatch(recorded)):
        raise ConfigError(f"{config_path}: weights_sha256 must be 64 lowercase hex digits; got {recorded!r}")
    try:
        return ModelConfig.from_dict(raw), recorded
    except ConfigError as err:
        raise ConfigError(f"{config_path}: {err}") from None
    except TypeError as err:  # a field of the wrong kind, e.g. "data_config": 3
        raise ConfigError(f"{config_path} is not a valid nlzoo config: {err}") from None


def write_folder_atomically(directory: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Fill a fresh temporary sibling of ``directory`` with ``write(tmp)``, then make it ``directory`` in one
    rename (an atomic exchange with an existing folder on Linux), so no reader sees a partial folder.

    Returns:
        ``directory`` as a Path.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it a normal folder's mode
        _install(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after an exchange, tmp holds the previous version
    return out


def _install(tmp: Path, out: Path) -> None:
    """Make ``tmp`` the folder ``out``; afterwards ``tmp`` holds what ``out`` held before (or is gone)."""
    for _ in range(_READ_ATTEMPTS):
        try:
            os.rename(tmp, out)  # atomic when ``out`` does not exist
            return
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.EACCES, errno.EPERM):
                raise
        if _exchange(tmp, out):
            return
        # No atomic exchange (not Linux): move the old folder aside, then rename; a reader may briefly find
        # no folder (an error it can retry), never a mixed one.
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        with contextlib.suppress(FileNotFoundError):
            os.rename(out, aside / "old")
        try:
            os.rename(tmp, out)
            return
        except OSError:
            continue
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    raise OSError(f"could not replace {out}: other writers kept replacing it")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable."""
    rename = _renameat2()
    if rename is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if rename(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOENT):  # no syscall / filesystem support / out vanished
        return False
    raise OSError(code, os.strerror(code), str(b))


@functools.cache
def _renameat2() -> Any:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _required(path: Path) -> Path:
    if not path.is_file():
        raise InputNotFoundError(
            f"{path} is missing: a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(write one with nlzoo.save_pretrained(model, dir) or `nlzoo convert`)"
        )
    return path
