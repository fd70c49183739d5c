"""Keep a trained model's ``nlzoo_config`` true to how it was trained.

A model folder saved after ``nlzoo fit`` must state the clip length, crop and normalisation the data module
actually used (not the architecture's defaults), and a Lightning checkpoint must carry them so that
``nlzoo export`` / ``predict-*`` prepare inputs the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..zoo.config import DataConfig, ModelConfig

CHECKPOINT_KEY = "nlzoo_data_config"


def record_data_config(model: nn.Module, datamodule: Any) -> None:
    """Copy the data module's resolved data config into ``model.nlzoo_config`` (no-op without either)."""
    config = getattr(model, "nlzoo_config", None)
    if not isinstance(config, ModelConfig) or datamodule is None:
        return
    resolve = getattr(datamodule, "resolve_data_config", None)
    if callable(resolve):
        config.data_config = resolve()
        return
    fields = getattr(datamodule, "data_config", None)  # data modules that state single fields (pose crops)
    if isinstance(fields, Mapping):
        config.data_config = config.data_config.replace(**fields)


def save_data_config(model: nn.Module, checkpoint: dict[str, Any]) -> None:
    config = getattr(model, "nlzoo_config", None)
    if isinstance(config, ModelConfig):
        checkpoint[CHECKPOINT_KEY] = config.data_config.to_dict()


def restore_data_config(model: nn.Module, checkpoint: Mapping[str, Any]) -> None:
    config = getattr(model, "nlzoo_config", None)
    if isinstance(config, ModelConfig) and CHECKPOINT_KEY in checkpoint:
        config.data_config = DataConfig.from_dict(checkpoint[CHECKPOINT_KEY])
