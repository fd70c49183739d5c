"""The on-disk model format, shared by local folders and Hugging Face Hub repos.

A model folder holds ``config.json`` (architecture, model_args, num_classes, label names, data config,
provenance) and ``model.safetensors``. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from .config import ModelConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


def model_config(model: nn.Module) -> ModelConfig:
    """The :class:`ModelConfig` a zoo model carries (set by :func:`nlzoo.load`)."""
    cfg = getattr(model, "nlzoo_config", None)
    if not isinstance(cfg, ModelConfig):
        raise ValueError(
            f"{type(model).__name__} carries no nlzoo config: build it with nlzoo.load(...) "
            "(or a task's .model) so that it can be saved and re-created by name"
        )
    return cfg


def save_pretrained(model: nn.Module, directory: str | os.PathLike[str], *, model_card: bool = True) -> Path:
    """Write ``config.json``, ``model.safetensors`` (and a ``README.md`` model card) into ``directory``.

    Returns:
        The directory path.
    """
    from .. import __version__

    cfg = model_config(model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(tensors, out / WEIGHTS_NAME, metadata={"format": "pt", "nlzoo": __version__})
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "nlzoo_version": __version__, **cfg.to_dict()}
    payload["num_features"] = getattr(model, "num_features", None)
    (out / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if model_card:
        from .card import render_model_card

        (out / "README.md").write_text(render_model_card(cfg))
    return out


def read_folder(directory: str | os.PathLike[str]) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The config and weights of a model folder, with clear errors for missing or broken files."""
    path = Path(directory)
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    for required in (config_path, weights_path):
        if not required.is_file():
            raise FileNotFoundError(
                f"{required} is missing: a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(write one with nlzoo.save_pretrained(model, dir) or `nlzoo convert`)"
            )
    try:
        raw = json.loads(config_path.read_text())
        cfg = ModelConfig.from_dict(raw)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{config_path} is not a valid nlzoo config: {err}") from err
    if raw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ValueError(f"{config_path} has format_version {raw['format_version']}; upgrade nlzoo to read it")
    try:
        state_dict = safetensors.torch.load_file(weights_path)
    except Exception as err:  # safetensors raises its own error types for truncated or corrupt files
        raise ValueError(
            f"{weights_path} is not a readable safetensors file ({err}); re-download or re-convert it"
        ) from err
    return cfg, state_dict
