"""From a Lightning checkpoint written by ``nlzoo fit`` to the zoo model it trained.

The checkpoint names its task class (``_class_path``, stored by the Lightning CLI) and holds every weight, so
the task is rebuilt without fetching its initial (e.g. ImageNet) weights again, and its ``model`` keeps the
data config it was trained with (see :mod:`nlzoo.tasks.model_config`).

A checkpoint is data, never code: the file is read with ``torch.load(weights_only=True)`` (plain tensors and
containers), and the task class it names is looked up among nlzoo's own tasks (``nlzoo.tasks.__all__``); no
module named in a file is ever imported.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..errors import ConfigError, InputNotFoundError, UnsafeCheckpointError, WeightsError

TASKS_MODULE = "nlzoo.tasks"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of a Lightning checkpoint, read without running code from it.

    Raises:
        InputNotFoundError: no such file.
        UnsafeCheckpointError: the file needs code execution to load (a pickled object other than tensors and
            containers).
        WeightsError: the file is empty, truncated or not a checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise InputNotFoundError(
            f"checkpoint {path} is a folder; give the .ckpt file that `nlzoo fit` wrote (a model folder is "
            "already exported: pass it as --model)"
        )
    if not path.is_file():
        raise InputNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); was the run killed while saving it? Use an earlier checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))  # torch's refusal of a global outside its allow-list
        if found:
            raise UnsafeCheckpointError(
                f"{path} holds the object {found.group(1)}, which would run code to load; nlzoo reads checkpoints "
                "as data only"
            ) from None
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint (or is corrupt): it does not unpickle as data"
        ) from None
    except (EOFError, RuntimeError, zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise WeightsError(f"{path} is not a readable checkpoint (truncated or corrupt: {reason})") from None
    except Exception:  # the legacy unpickler fails on non-pickle bytes with whatever error their opcodes cause
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint (or is corrupt): it does not unpickle as data"
        ) from None
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"{path} holds a {type(checkpoint).__name__}, not a Lightning checkpoint (a dict)")
    return checkpoint


def task_class(class_path: Any, path: str | os.PathLike[str]) -> type[pl.LightningModule]:
    """The nlzoo task a checkpoint's ``_class_path`` names, from an allow-list (never an import of the string)."""
    from .. import tasks

    if not isinstance(class_path, str) or "." not in class_path:
        raise ConfigError(
            f"{path} does not say which task trained it (no '_class_path' in its hyper-parameters, which "
            "`nlzoo fit` stores). Load it with your task class: Task.load_from_checkpoint(path).model"
        )
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(tasks, class_name, None) if class_name in tasks.__all__ else None
    known = (module_name == TASKS_MODULE or module_name.startswith(TASKS_MODULE + ".")) and (
        isinstance(cls, type) and issubclass(cls, pl.LightningModule)
    )
    if not known or module_name not in (TASKS_MODULE, cls.__module__):
        names = ", ".join(f"{TASKS_MODULE}.{n}" for n in tasks.__all__ if _is_task(getattr(tasks, n)))
        raise UnsafeCheckpointError(
            f"{path} names the task {class_path!r}, which is not one of nlzoo's ({names}); nlzoo does not import "
            "classes named in files. For your own task: YourTask.load_from_checkpoint(path, weights_only=True).model"
        )
    return cls


def _is_task(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, pl.LightningModule)


def model_from_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> nn.Module:
    """The trained network inside a task checkpoint (``.ckpt``), carrying its ``nlzoo_config``.

    Raises:
        InputNotFoundError: no such file.
        WeightsError: an empty, truncated or unreadable file; :class:`UnsafeCheckpointError` for one that names
            code (a pickled object, or a task class that is not nlzoo's).
        ConfigError: the checkpoint does not name a task (not written by ``nlzoo fit``).
    """
    hparams = read_checkpoint(path).get("hyper_parameters", {})
    if not isinstance(hparams, dict):
        raise ConfigError(f"{path}: 'hyper_parameters' is a {type(hparams).__name__}, not a dict")
    task_cls = task_class(hparams.get("_class_path"), path)
    overrides = {"pretrained": False} if "pretrained" in hparams else {}
    task = task_cls.load_from_checkpoint(path, map_location=map_location, weights_only=True, **overrides)
    model = getattr(task, "model", None)
    if not isinstance(model, nn.Module) or getattr(model, "nlzoo_config", None) is None:
        raise ConfigError(f"{task_cls.__name__} in {path} holds no nlzoo model (a 'model' with nlzoo_config)")
    return model
