"""``VideoDataModule``: video classification data from list files or class folders, sized by the model.

Clip length, sampling rate, scales, crop and normalisation come from the model's
:class:`~nlzoo.zoo.DataConfig`: the ``model`` argument names it (a registry name, ``arch.tag`` or a saved
model folder); without it, the LightningModule being trained provides it (its ``data_config``).
``data_config`` overrides single fields, e.g. ``{"num_frames": 32, "sampling_rate": 2}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputNotFoundError
from ..zoo import DataConfig
from .classification_datamodule import ClassificationDataModule
from .video_dataset import MultiViewVideoDataset, VideoClipDataset, collate_clips, collate_views
from .video_sources import VideoItem, infer_num_classes, read_list_file, scan_class_folders


class VideoDataModule(ClassificationDataModule):
    """Train / val / test video splits, each a ``<path> <label>`` list file or a class-folder tree.

    Training draws one random clip per video (random short-side scale, crop, flip); validation and test
    yield every view of a video (``val_views`` / ``test_views`` = clips x crops) for video-level scores.
    Unreadable videos are skipped and counted (see :mod:`nlzoo.data.video_dataset`).

    Args:
        train: list file or class-folder root of the training split.
        val: the validation split (same forms).
        test: the test split (same forms).
        root: directory the paths in list files are relative to (default: each list file's directory).
        label_names: class names: a file with one name per line, or a list. Default: the class folders'
            names when ``train`` is a folder tree.
        num_classes: number of classes when no names are given (default: largest training label + 1).
        multi_label: labels are sets of classes (Charades-style); targets become multi-hot vectors.
        model: whose data config to use (registry name, ``arch.tag`` or model folder). Default: the data
            config of the LightningModule being trained.
        data_config: overrides of single data-config fields (``num_frames``, ``crop_size``, ...).
        batch_size: training clips per batch (per device).
        eval_batch_size: videos per validation/test batch (each brings all its views).
        val_views: (clips, crops) per validation video; (1, 1) is a quick centre view.
        test_views: (clips, crops) per test video. Default: the data config's (the paper's 10 x 3).
        num_workers: loader processes. Default: :func:`default_num_workers`.
        backend: video decoder: ``"pyav"`` (default), or ``"torchcodec"`` where it and FFmpeg's libraries are
            installed (same frames, see :mod:`nlzoo.data.video_io`).
        seed: base seed of training order and augmentation. Default: the run's ``seed_everything`` value.
    """

    def __init__(
        self,
        train: str | None = None,
        *,
        val: str | None = None,
        test: str | None = None,
        root: str | None = None,
        label_names: str | list[str] | None = None,
        num_classes: int | None = None,
        multi_label: bool = False,
        model: str | None = None,
        data_config: dict[str, Any] | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        val_views: tuple[int, int] = (1, 1),
        test_views: tuple[int, int] | None = None,
        num_workers: int | None = None,
        backend: str = "pyav",
        seed: int | None = None,
    ) -> None:
        super().__init__(
            {"train": train, "val": val, "test": test},
            label_names=label_names,
            model=model,
            data_config=data_config,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
        )
        self.root, self.multi_label = root, multi_label
        self._num_classes_arg = num_classes
        self.val_views, self.test_views = tuple(val_views), (tuple(test_views) if test_views else None)
        self.backend = backend

    # Classes --------------------------------------------------------------------------------------------
    @cached_property
    def label_names(self) -> list[str] | None:
        """Class names in index order, if known."""
        names = self.given_label_names()
        if names is not None:
            return names
        train = self.splits["train"]
        if train is not None and Path(train).is_dir():
            return scan_class_folders(train)[1]
        return None

    @cached_property
    def num_classes(self) -> int:
        """Number of classes (linked to the model's head by the CLI)."""
        names, given = self.label_names, self._num_classes_arg
        if names is not None:
            if given is not None and given != len(names):
                raise ConfigError(f"num_classes={given} but {len(names)} label names are given")
            return len(names)
        if given is not None:
            return given
        if self.splits["train"] is not None:
            return infer_num_classes(self._items("train", None))
        raise ConfigError("the number of classes is unknown: give label_names, num_classes or a training split")

    # Datasets -------------------------------------------------------------------------------------------
    predict_hint = "use `nlzoo test` or `nlzoo predict-video`"
    collate_train = staticmethod(collate_clips)
    collate_eval = staticmethod(collate_views)

    def build_dataset(self, split: str, config: DataConfig) -> VideoClipDataset | MultiViewVideoDataset:
        items = self._items(split, self.num_classes)
        common = {"config": config, "num_classes": self.num_classes, "multi_label": self.multi_label}
        if split == "train":
            return VideoClipDataset(items, backend=self.backend, **common)
        clips, crops = self.val_views if split == "val" else (self.test_views or (config.test_clips, config.test_crops))
        if not clips or not crops:
            raise ConfigError(f"no {split} views: set data.{split}_views or test_clips/test_crops in the data config")
        return MultiViewVideoDataset(items, num_clips=clips, num_crops=crops, backend=self.backend, **common)

    def _items(self, split: str, num_classes: int | None) -> list[VideoItem]:
        source = self.splits[split]
        assert source is not None
        if Path(source).is_dir():
            items = scan_class_folders(source, label_names=self.label_names)[0]
        else:
            items = read_list_file(source, root=self.root, num_classes=num_classes)
        _check_some_exist(items, source)
        return items


def _check_some_exist(items: Sequence[VideoItem], source: str, probe: int = 8) -> None:
    """Fail early when none of the first videos exists (a wrong root), instead of skipping them all."""
    first = items[:probe]
    if not any(os.path.exists(it.path) for it in first):
        raise InputNotFoundError(
            f"none of the first {len(first)} videos listed in {source} exists (e.g. {first[0].path}); "
            "check the list file's paths and data.root"
        )
