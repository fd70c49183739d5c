"""The on-disk model format, shared by local folders and Hugging Face Hub repos.

A model folder holds ``config.json`` (architecture, model_args, num_classes, label names, data config,
provenance, and the sha256 of the weights file), ``model.safetensors`` and a ``README.md`` model card.
Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    """Write ``config.json``, ``model.safetensors`` (and a ``README.md`` model card) into ``directory``.

    This is exactly the folder :func:`nlzoo.push_to_hub` uploads.

    Args:
        model: a model built by :func:`nlzoo.load` (it carries ``model.nlzoo_config``).
        directory: created if needed; existing files of the same names are replaced.
        model_card: also write the generated model card.
        repo_id: the Hub repo the folder is meant for, named in the card's loading example.

    Returns:
        The directory path.
    """
    from .. import __version__

    cfg = model_config(model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes a metadata map in hash order, so two keys would make the bytes (and
    # the recorded sha256) differ between saves of the same model. The nlzoo version is in config.json.
    safetensors.torch.save_file(tensors, out / WEIGHTS_NAME, metadata={"format": "pt"})
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "nlzoo_version": __version__, **cfg.to_dict()}
    payload["num_features"] = getattr(model, "num_features", None)
    payload["weights_sha256"] = file_sha256(out / WEIGHTS_NAME)
    (out / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if model_card:
        from .card import render_model_card

        (out / CARD_NAME).write_text(render_model_card(cfg, repo_id=repo_id))
    return out


def read_config(directory: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` stored in a model folder's ``config.json``."""
    config_path = _required(Path(directory) / CONFIG_NAME)
    try:
        raw = json.loads(config_path.read_text())
        cfg = ModelConfig.from_dict(raw)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ConfigError(f"{config_path} is not a valid nlzoo config: {err}") from err
    if raw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ConfigError(f"{config_path} has format_version {raw['format_version']}; upgrade nlzoo to read it")
    return cfg


def read_folder(directory: str | os.PathLike[str]) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The config and weights of a model folder, with clear errors for missing or broken files.

    The weights are read into memory in one go (not memory-mapped), so the tensors never depend on the
    file staying where it is (a cache may evict or replace it).
    """
    cfg = read_config(directory)
    weights_path = _required(Path(directory) / WEIGHTS_NAME)
    try:
        tensors = safetensors.torch.load(weights_path.read_bytes())
    except Exception as err:  # safetensors raises its own error types for truncated or corrupt files
        raise WeightsError(
            f"{weights_path} is not a readable safetensors file ({err}); re-download or re-convert it"
        ) from err
    return cfg, {key: tensors[key] for key in sorted(tensors)}  # load() returns them in hash order


def check_weights_digest(directory: str | os.PathLike[str]) -> None:
    """Refuse a folder whose model.safetensors is not the file its config.json records (edited or damaged)."""
    path = Path(directory)
    recorded = json.loads(_required(path / CONFIG_NAME).read_text()).get("weights_sha256")
    found = file_sha256(_required(path / WEIGHTS_NAME))
    if recorded is not None and recorded != found:
        raise ChecksumMismatchError(
            f"{path / WEIGHTS_NAME} has sha256 {found} but {CONFIG_NAME} records {recorded}: the weights changed "
            "after the folder was written. Re-create the folder with nlzoo.save_pretrained(model, dir)."
        )


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
