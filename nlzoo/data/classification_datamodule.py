"""``ClassificationDataModule``: what the video and image classification data modules share.

Both take train / val / test splits, size their inputs by a model's :class:`~nlzoo.zoo.DataConfig` (named by
``model``, or taken from the LightningModule being trained), and load with the same seeded, resumable
loaders. Subclasses say how a name maps to a data config, how a split becomes a dataset, and how samples
are collated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError
from ..zoo import DataConfig
from ..zoo.factory import resolve_data_config
from .samplers import EpochSampler
from .video_sources import read_label_names

STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}


def model_data_config(model: str) -> DataConfig:
    """The data config of a registry name (``arch``: its default tag's, or ``arch.tag``) or a model folder path,
    by :func:`nlzoo.zoo.resolve_data_config`'s rule (the same as ``nlzoo.load``).

    Raises:
        ValueError: a Hub name (its config is only known once downloaded: let the task provide it).
        KeyError: an unknown architecture or tag.
    """
    if model.startswith("hf-hub:"):
        raise ConfigError(
            f"data.model={model!r}: a Hub model's data config is read when the task loads it; leave data.model "
            "unset so the data module takes the config from the task"
        )
    return resolve_data_config(model)


def default_num_workers(devices: int = 1) -> int:
    """Loader processes per device: the CPUs this process may use, shared by the devices, one left for the
    main process, at most 8 (decoding scales with processes, not threads)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cpus // max(devices, 1) - 1))


class ClassificationDataModule(pl.LightningDataModule):
    """Base of :class:`~nlzoo.data.VideoDataModule` and :class:`~nlzoo.data.ImageFolderDataModule`."""

    #: What to tell a user who asks this module for predictions (it has no predict split).
    predict_hint: ClassVar[str] = "use `nlzoo test`"

    def __init__(
        self,
        splits: dict[str, str | None],
        *,
        label_names: str | list[str] | None,
        model: str | None,
        data_config: dict[str, Any] | None,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int | None,
        seed: int | None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(f"batch sizes must be >= 1; got {batch_size} and {eval_batch_size}")
        if seed is not None and seed < 0:
            raise ConfigError(f"seed must be >= 0; got {seed}")
        self.splits = splits
        self.model, self._label_names_arg = model, label_names
        self.data_config_overrides = dict(data_config or {})
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self.datasets: dict[str, Dataset] = {}

    # What subclasses provide ----------------------------------------------------------------------------
    def named_data_config(self, model: str) -> DataConfig:
        """The data config of the ``model`` argument's name."""
        return model_data_config(model)

    def build_dataset(self, split: str, config: DataConfig) -> Dataset:
        """The dataset of ``split`` (``"train"``, ``"val"`` or ``"test"``) prepared with ``config``."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_dataset(split, config)")

    collate_train: Callable[[list], Any]
    collate_eval: Callable[[list], Any]

    # Classes --------------------------------------------------------------------------------------------
    def given_label_names(self) -> list[str] | None:
        """The ``label_names`` argument as a list (read from its file when it is a path)."""
        names = self._label_names_arg
        if isinstance(names, str):
            return read_label_names(names)
        return None if names is None else list(names)

    @cached_property
    def num_classes(self) -> int:
        """Number of classes (linked to the model's head by the CLI)."""
        return len(self.label_names)

    # Data config ------------------------------------------------------------------------------------------
    def resolve_data_config(self) -> DataConfig:
        """The model's data config with ``data_config`` overrides applied."""
        if self.model is not None:
            base = self.named_data_config(self.model)
        else:
            module = self.trainer.lightning_module if self.trainer is not None else None
            base = getattr(module, "data_config", None)
            if base is None:
                raise ConfigError(
                    "no data config: pass model='<registry name or folder>' to the data module, or train a "
                    "LightningModule with a data_config (nlzoo tasks have one)"
                )
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in self.data_config_overrides.items()}
        try:
            return base.replace(**overrides)
        except TypeError:
            known = sorted(DataConfig.__dataclass_fields__)
            raise ConfigError(f"unknown data_config keys {sorted(overrides)}; known: {known}") from None

    # Lightning hooks --------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            raise ConfigError(f"{type(self).__name__} has no predict split; {self.predict_hint}")
        config = self.resolve_data_config()
        for split in STAGE_SPLITS.get(stage or "fit", ()):
            if self.splits[split] is None:
                if split == "val":
                    continue
                raise ConfigError(f"stage {stage!r} needs the {split!r} split; set data.{split}")
            self.datasets[split] = self.build_dataset(split, config)

    def _seed(self) -> int:
        return self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _loader_settings(self) -> dict[str, Any]:
        devices = self.trainer.num_devices if self.trainer is not None else 1
        workers = default_num_workers(devices) if self.num_workers is None else self.num_workers
        on_gpu = self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator)
        return {
            "num_workers": workers,
            "pin_memory": on_gpu,
            "persistent_workers": workers > 0,
            # Each iterator draws its workers' base seed from this generator, not from torch's global one,
            # so loading data never shifts the global stream (dropout) and resumed runs replay it exactly.
            "generator": torch.Generator().manual_seed(self._seed()),
        }

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(dataset), seed=self._seed()),
            collate_fn=self.collate_train,
            drop_last=len(dataset) >= self.batch_size,
            **self._loader_settings(),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=self.collate_eval,
            **self._loader_settings(),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
