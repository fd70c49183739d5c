"""``ImageFolderDataModule``: image classification from class-folder trees, with timm's transforms.

``root/<class name>/<image>`` per split (the torchvision ``ImageFolder`` / ImageNet layout); classes are
numbered in sorted folder order, taken from the training split (or given), and a validation or test folder
may hold a subset of them. Crop size, interpolation, crop_pct and mean/std come from the model's
:class:`~nlzoo.zoo.DataConfig`: the ``model`` argument names it (a registry name, ``arch.tag`` or a saved
model folder); without it, the LightningModule being trained provides it (its ``data_config``).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ..errors import ConfigError
from ..zoo import DataConfig
from ..zoo.factory import TIMM_PREFIX
from ..zoo.families.sources import TimmWeights
from .classification_datamodule import ClassificationDataModule, model_data_config
from .image_dataset import IMAGE_EXTENSIONS, ImageFileDataset, collate_images
from .image_transforms import eval_image_transform, train_image_transform
from .video_sources import scan_class_folders


class ImageFolderDataModule(ClassificationDataModule):
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
        super().__init__(
            {"train": train, "val": val, "test": test},
            label_names=label_names,
            model=model,
            data_config=data_config,
            batch_size=batch_size,
            eval_batch_size=batch_size if eval_batch_size is None else eval_batch_size,
            num_workers=num_workers,
            seed=seed,
        )
        self.augment: dict[str, Any] = {
            "scale": tuple(scale),
            "hflip": hflip,
            "color_jitter": color_jitter,
            "auto_augment": auto_augment,
            "re_prob": re_prob,
        }

    # Classes --------------------------------------------------------------------------------------------
    @cached_property
    def label_names(self) -> list[str]:
        """Class names in index order (linked to the model by the CLI)."""
        names = self.given_label_names()
        if names is not None:
            return names
        train = self.splits["train"]
        if train is None:
            raise ConfigError("the classes are unknown: give label_names or a training split")
        return scan_class_folders(train, extensions=IMAGE_EXTENSIONS)[1]

    # Datasets -------------------------------------------------------------------------------------------
    predict_hint = "use `nlzoo test` on a labelled folder"
    collate_train = collate_eval = staticmethod(collate_images)

    def named_data_config(self, model: str) -> DataConfig:
        """Also ``timm:<arch>[.<tag>]`` names: their config is timm's for those weights."""
        if model.startswith(TIMM_PREFIX):
            return TimmWeights(model.removeprefix(TIMM_PREFIX)).data_config()
        return model_data_config(model)

    def build_dataset(self, split: str, config: DataConfig) -> ImageFileDataset:
        items, _ = scan_class_folders(self.splits[split], label_names=self.label_names, extensions=IMAGE_EXTENSIONS)
        train = split == "train"
        transform = train_image_transform(config, **self.augment) if train else eval_image_transform(config)
        return ImageFileDataset(items, transform=transform, train=train)
