"""From a Lightning checkpoint written by ``nlzoo fit`` to the zoo model it trained.

The checkpoint names its task class (``_class_path``, stored by the Lightning CLI) and holds every weight, so
the task is rebuilt without fetching its initial (e.g. ImageNet) weights again, and its ``model`` keeps the
data config it was trained with (see :mod:`nlzoo.tasks.model_config`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from ..errors import ConfigError, InputNotFoundError


def model_from_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> nn.Module:
    """The trained network inside a task checkpoint (``.ckpt``), carrying its ``nlzoo_config``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the checkpoint does not name an nlzoo task (not written by ``nlzoo fit``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"checkpoint {path} does not exist")
    hparams = torch.load(path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    class_path = hparams.get("_class_path")
    if not isinstance(class_path, str) or "." not in class_path:
        raise ConfigError(
            f"{path} does not say which task trained it (no '_class_path' in its hyper-parameters, which "
            "`nlzoo fit` stores). Load it with your task class: Task.load_from_checkpoint(path).model"
        )
    module_name, _, class_name = class_path.rpartition(".")
    task_cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(task_cls, type) and issubclass(task_cls, pl.LightningModule)):
        raise ConfigError(f"{path} names {class_path!r}, which is not a LightningModule")
    overrides = {"pretrained": False} if "pretrained" in hparams else {}
    task = task_cls.load_from_checkpoint(path, map_location=map_location, **overrides)
    model = getattr(task, "model", None)
    if not isinstance(model, nn.Module) or getattr(model, "nlzoo_config", None) is None:
        raise ConfigError(f"{class_path} in {path} holds no nlzoo model (a 'model' with nlzoo_config)")
    return model
