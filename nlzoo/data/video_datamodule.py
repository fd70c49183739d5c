"""``VideoDataModule``: video classification data from list files or class folders, sized by the model.

Clip length, sampling rate, scales, crop and normalisation come from the model's
:class:`~nlzoo.zoo.DataConfig`: the ``model`` argument names it (a registry name, ``arch.tag`` or a saved
model folder); without it, the LightningModule being trained provides it (its ``data_config``).
``data_config`` overrides single fields, e.g. ``{"num_frames": 32, "sampling_rate": 2}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader

from ..zoo import DataConfig, get_entry
from ..zoo.registry import split_tag
from .samplers import EpochSampler
from .video_dataset import MultiViewVideoDataset, VideoClipDataset, collate_clips, collate_views
from .video_sources import VideoItem, infer_num_classes, read_label_names, read_list_file, scan_class_folders


def model_data_config(model: str) -> DataConfig:
    """The data config of a registry name (``arch`` or ``arch.tag``) or a saved model folder.

    Raises:
        ValueError: a Hub name (its config is only known once downloaded: let the task provide it).
        KeyError: an unknown architecture or tag.
    """
    if model.startswith("hf-hub:"):
        raise ValueError(
            f"data.model={model!r}: a Hub model's data config is read when the task loads it; leave data.model "
            "unset so the data module takes the config from the task"
        )
    folder = Path(model.removeprefix("local-dir:"))
    if folder.is_dir():
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{folder} has no config.json; is it a folder written by nlzoo.save_pretrained?")
        return DataConfig.from_dict(json.loads(config_file.read_text()).get("data_config", {}))
    arch, tag = split_tag(model)
    entry = get_entry(arch)
    return entry.data_config.replace(**entry.tag(tag).data_config) if tag else entry.data_config


def default_num_workers(devices: int = 1) -> int:
    """Loader processes per device: the CPUs this process may use, shared by the devices, one left for the
    main process, at most 8 (decoding scales with processes, not threads)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cpus // max(devices, 1) - 1))


class VideoDataModule(pl.LightningDataModule):
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
        backend: video decoder (``"pyav"``).
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
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(f"batch sizes must be >= 1; got {batch_size} and {eval_batch_size}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be >= 0; got {seed}")
        self.splits = {"train": train, "val": val, "test": test}
        self.root, self.multi_label, self.model = root, multi_label, model
        self._label_names_arg, self._num_classes_arg = label_names, num_classes
        self.data_config_overrides = dict(data_config or {})
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_views, self.test_views = tuple(val_views), (tuple(test_views) if test_views else None)
        self.num_workers, self.backend, self.seed = num_workers, backend, seed
        self.datasets: dict[str, VideoClipDataset | MultiViewVideoDataset] = {}

    # Classes --------------------------------------------------------------------------------------------
    @cached_property
    def label_names(self) -> list[str] | None:
        """Class names in index order, if known."""
        names = self._label_names_arg
        if isinstance(names, str):
            return read_label_names(names)
        if names is not None:
            return list(names)
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
                raise ValueError(f"num_classes={given} but {len(names)} label names are given")
            return len(names)
        if given is not None:
            return given
        if self.splits["train"] is not None:
            return infer_num_classes(self._items("train", None))
        raise ValueError("the number of classes is unknown: give label_names, num_classes or a training split")

    # Data config ------------------------------------------------------------------------------------------
    def resolve_data_config(self) -> DataConfig:
        """The model's data config with ``data_config`` overrides applied."""
        if self.model is not None:
            base = model_data_config(self.model)
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
        config = self.resolve_data_config()
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "fit", ())
        if stage == "predict":
            raise ValueError("VideoDataModule has no predict split; use `nlzoo test` or `nlzoo predict-video`")
        for split in wanted:
            if self.splits[split] is None:
                if split == "val":
                    continue
                raise ValueError(f"stage {stage!r} needs the {split!r} split; set data.{split}")
            self.datasets[split] = self._dataset(split, config)

    def _dataset(self, split: str, config: DataConfig) -> VideoClipDataset | MultiViewVideoDataset:
        items = self._items(split, self.num_classes)
        common = {"config": config, "num_classes": self.num_classes, "multi_label": self.multi_label}
        if split == "train":
            return VideoClipDataset(items, backend=self.backend, **common)
        clips, crops = self.val_views if split == "val" else (self.test_views or (config.test_clips, config.test_crops))
        if not clips or not crops:
            raise ValueError(f"no {split} views: set data.{split}_views or test_clips/test_crops in the data config")
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
            collate_fn=collate_clips,
            drop_last=len(dataset) >= self.batch_size,
            **self._loader_settings(),
        )

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=collate_views,
            **self._loader_settings(),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def _check_some_exist(items: Sequence[VideoItem], source: str, probe: int = 8) -> None:
    """Fail early when none of the first videos exists (a wrong root), instead of skipping them all."""
    first = items[:probe]
    if not any(os.path.exists(it.path) for it in first):
        raise FileNotFoundError(
            f"none of the first {len(first)} videos listed in {source} exists (e.g. {first[0].path}); "
            "check the list file's paths and data.root"
        )
