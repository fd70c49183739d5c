"""``ImageFolderDataModule``: image classification from class-folder trees, with timm's transforms.

``root/<class name>/<image>`` per split (the torchvision ``ImageFolder`` / ImageNet layout); classes are
numbered in sorted folder order, taken from the training split (or given), and a validation or test folder
may hold a subset of them. Crop size, interpolation, crop_pct and mean/std come from the model's
:class:`~nlzoo.zoo.DataConfig`: the ``model`` argument names it (a registry name, ``arch.tag`` or a saved
model folder); without it, the LightningModule being trained provides it (its ``data_config``).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader

from ..zoo import DataConfig
from ..zoo.factory import TIMM_PREFIX
from ..zoo.families.sources import TimmWeights
from .image_dataset import IMAGE_EXTENSIONS, ImageFileDataset, collate_images
from .image_transforms import eval_image_transform, train_image_transform
from .samplers import EpochSampler
from .video_datamodule import default_num_workers, model_data_config
from .video_sources import read_label_names, scan_class_folders


def named_data_config(model: str) -> DataConfig:
    """The data config of a registry name, ``arch.tag``, model folder or ``timm:<arch>[.<tag>]`` name."""
    if model.startswith(TIMM_PREFIX):
        return TimmWeights(model.removeprefix(TIMM_PREFIX)).data_config()
    return model_data_config(model)


class ImageFolderDataModule(pl.LightningDataModule):
    """Train / val / test image splits, each a folder of class folders.

    Unreadable images are skipped with a warning naming them and counted in the logged ``*/skipped``
    (see :mod:`nlzoo.data.image_dataset`).

    Args:
        train: class-folder root of the training split.
        val: class-folder root of the validation split.
        test: class-folder root of the test split.
        label_names: class names in index order: a file with one name per line, or a list. Default: the
            training split's folder names (sorted).
        model: whose data config to use (registry name, ``arch.tag``, model folder or ``timm:<arch>[.<tag>]``).
            Default: the data config of the LightningModule being trained.
        data_config: overrides of single data-config fields, e.g. ``{"crop_size": [64, 64], "crop_pct": 1.0}``.
        batch_size: training images per batch (per device).
        eval_batch_size: images per validation/test batch. Default: ``batch_size``.
        scale: area fraction range of the training random resized crop.
        hflip: training horizontal-flip probability.
        color_jitter: training colour-jitter strength (0 disables it).
        auto_augment: timm augmentation policy, e.g. ``"rand-m9-mstd0.5-inc1"``; none by default.
        re_prob: training random-erasing probability.
        num_workers: loader processes. Default: :func:`~nlzoo.data.default_num_workers`.
        seed: base seed of training order and augmentation. Default: the run's ``seed_everything`` value.
    """

    def __init__(
        self,
        train: str | None = None,
        *,
        val: str | None = None,
        test: str | None = None,
        label_names: str | list[str] | None = None,
        model: str | None = None,
        data_config: dict[str, Any] | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
        hflip: float = 0.5,
        color_jitter: float = 0.4,
        auto_augment: str | None = None,
        re_prob: float = 0.0,
        num_workers: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(f"batch sizes must be >= 1; got {batch_size} and {eval_batch_size}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be >= 0; got {seed}")
        self.splits = {"train": train, "val": val, "test": test}
        self.model, self._label_names_arg = model, label_names
        self.data_config_overrides = dict(data_config or {})
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.augment: dict[str, Any] = {
            "scale": tuple(scale),
            "hflip": hflip,
            "color_jitter": color_jitter,
            "auto_augment": auto_augment,
            "re_prob": re_prob,
        }
        self.num_workers, self.seed = num_workers, seed
        self.datasets: dict[str, ImageFileDataset] = {}

    # Classes --------------------------------------------------------------------------------------------
    @cached_property
    def label_names(self) -> list[str]:
        """Class names in index order (linked to the model by the CLI)."""
        names = self._label_names_arg
        if isinstance(names, str):
            return read_label_names(names)
        if names is not None:
            return list(names)
        train = self.splits["train"]
        if train is None:
            raise ValueError("the classes are unknown: give label_names or a training split")
        return scan_class_folders(train, extensions=IMAGE_EXTENSIONS)[1]

    @cached_property
    def num_classes(self) -> int:
        """Number of classes (linked to the model's head by the CLI)."""
        return len(self.label_names)

    # Data config ------------------------------------------------------------------------------------------
    def resolve_data_config(self) -> DataConfig:
        """The model's data config with ``data_config`` overrides applied."""
        if self.model is not None:
            base = named_data_config(self.model)
        else:
            module = self.trainer.lightning_module if self.trainer is not None else None
            base = getattr(module, "data_config", None)
            if base is None:
                raise ValueError(
                    "no data config: pass model='<registry name or folder>' to the data module, or train a "
                    "LightningModule with a data_config (nlzoo tasks have one)"
                )
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in self.data_config_overrides.items()}
        try:
            return base.replace(**overrides)
        except TypeError:
            known = sorted(DataConfig.__dataclass_fields__)
            raise ValueError(f"unknown data_config keys {sorted(overrides)}; known: {known}") from None

    # Lightning hooks --------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            raise ValueError("ImageFolderDataModule has no predict split; use `nlzoo test` on a labelled folder")
        config = self.resolve_data_config()
        for split in {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "fit", ()):
            root = self.splits[split]
            if root is None:
                if split == "val":
                    continue
                raise ValueError(f"stage {stage!r} needs the {split!r} split; set data.{split}")
            items, _ = scan_class_folders(root, label_names=self.label_names, extensions=IMAGE_EXTENSIONS)
            train = split == "train"
            transform = train_image_transform(config, **self.augment) if train else eval_image_transform(config)
            self.datasets[split] = ImageFileDataset(items, transform=transform, train=train)

    def _loader_settings(self) -> dict[str, Any]:
        devices = self.trainer.num_devices if self.trainer is not None else 1
        workers = default_num_workers(devices) if self.num_workers is None else self.num_workers
        on_gpu = self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator)
        return {"num_workers": workers, "pin_memory": on_gpu, "persistent_workers": workers > 0}

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(dataset), seed=seed),
            collate_fn=collate_images,
            drop_last=len(dataset) >= self.batch_size,
            **self._loader_settings(),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        loader_args = {"batch_size": self.eval_batch_size, "shuffle": False, "collate_fn": collate_images}
        return DataLoader(self.datasets[split], **loader_args, **self._loader_settings())

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
