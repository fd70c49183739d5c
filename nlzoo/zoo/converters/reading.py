"""Reading checkpoint files safely, whatever framework wrote them.

PyTorch files (zip or legacy) go through ``torch.load(weights_only=True)``; anything else through the
restricted unpickler of :mod:`.safe_pickle`. Nothing is ever unpickled without a restriction.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ...errors import InputNotFoundError, UnsafeCheckpointError
from .safe_pickle import RefusedGlobalError, load_pickle

# The first object of a legacy (non-zip) torch.save file (torch/serialization.py MAGIC_NUMBER).
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Where frameworks keep the weights inside a checkpoint dict.
WEIGHT_KEYS = ("model_state", "state_dict", "blobs")

Container = Literal["torch", "pickle"]


@dataclass(frozen=True)
class RawCheckpoint:
    """What a checkpoint file holds, before any key mapping."""

    path: Path
    container: Container  # "torch" (torch.save) or "pickle" (a plain pickle, e.g. Caffe2 blobs)
    payload: Any


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | os.PathLike[str]) -> RawCheckpoint:
    """Load a checkpoint file without running code from it.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file refers to code (a disallowed global) or is not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"checkpoint {path} does not exist (or is not a file)")
    if zipfile.is_zipfile(path):
        return RawCheckpoint(path, "torch", _torch_load(path))
    try:
        payload = load_pickle(path)
    except RefusedGlobalError as err:
        raise UnsafeCheckpointError(f"{path}: {err}") from None
    except Exception as err:  # not a pickle at all: truncated, HDF5, text, ...
        raise UnsafeCheckpointError(
            f"{path} is neither a PyTorch checkpoint nor a pickle of arrays ({type(err).__name__}: {err})"
        ) from None
    if isinstance(payload, int) and payload == _TORCH_LEGACY_MAGIC:
        return RawCheckpoint(path, "torch", _torch_load(path))
    return RawCheckpoint(path, "pickle", payload)


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError) as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))  # torch names the global outside its allow-list
        why = f"it holds {found.group(1)}, which runs code to load" if found else f"{type(err).__name__}"
        keys = repr(WEIGHT_KEYS)
        raise UnsafeCheckpointError(
            f"{path}: torch.load(weights_only=True) refused it ({why}); nlzoo never unpickles arbitrary objects. "
            "If you trust the file, keep only its weights and convert that file: in Python, "
            f"ckpt = torch.load({str(path)!r}, weights_only=False); "
            f"torch.save({{k: ckpt[k] for k in {keys} if k in ckpt}}, 'weights.pth')"
        ) from None


def weight_tables(payload: Any) -> dict[str, Mapping[str, Any]]:
    """Candidate weight dicts in a payload: ``{"model_state": {...}}``-style entries and the payload itself."""
    tables: dict[str, Mapping[str, Any]] = {}
    if isinstance(payload, Mapping):
        for key in WEIGHT_KEYS:
            if isinstance(payload.get(key), Mapping):
                tables[key] = payload[key]
        tables[""] = payload
    return tables


def is_array(value: Any) -> bool:
    return isinstance(value, torch.Tensor | np.ndarray)
