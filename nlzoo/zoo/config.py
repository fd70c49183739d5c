"""Metadata carried by every zoo model: its data config, the pretrained tags, and the saved model config.

Plain frozen dataclasses with ``to_dict``/``from_dict`` so they round-trip through ``config.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import nn

Task = Literal["video-classification", "image-classification", "pose-estimation", "detection", "keypoints"]
TASKS: tuple[str, ...] = ("video-classification", "image-classification", "pose-estimation", "detection", "keypoints")

# Kinetics statistics used by the authors (Caffe2 114.75 / 57.375 on 0-255) and PySlowFast (0.45 / 0.225).
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataConfig:
    """How inputs must be prepared for a model (timm's data config, extended to clips).

    Pixel values are in [0, 1] before ``(x - mean) / std``. ``crop_size`` is (H, W). Video fields are
    ``None`` for image models.
    """

    crop_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    num_frames: int | None = None
    sampling_rate: int | None = None
    train_scale: tuple[int, int] | None = None  # random short side in [lo, hi] for training
    test_scale: int | None = None  # short side at test time
    test_clips: int | None = None  # temporal views at test time (the paper: 10)
    test_crops: int | None = None  # spatial views at test time (the paper: 3)
    crop_pct: float | None = None  # image models: centre crop fraction at test time

    def replace(self, **changes: Any) -> DataConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown data_config keys {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, T, H, W) for clips, (C, H, W) for images."""
        spatial = tuple(self.crop_size)
        return (3, self.num_frames, *spatial) if self.num_frames else (3, *spatial)


class WeightSource(Protocol):
    """Where a tag's weights come from; ``fetch`` returns a state dict in ``model``'s key space."""

    def describe(self) -> str: ...

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class PretrainedTag:
    """One set of weights for an architecture (``arch.tag``), with its provenance and reported results.

    ``status``: ``"available"`` (``source`` can fetch it), ``"convertible"`` (a published checkpoint exists at
    ``origin_url``; loading downloads and converts it, or ``nlzoo convert`` does by hand, but nlzoo hosts no
    copy yet) or ``"unavailable"``.
    ``partial`` lists key prefixes the source legitimately lacks (new non-local blocks on a plain
    backbone); those keep their identity initialisation.
    """

    tag: str
    dataset: str
    num_classes: int
    status: Literal["available", "convertible", "unavailable"]
    source: WeightSource | None = None
    label_names: tuple[str, ...] | None = None
    data_config: Mapping[str, Any] = field(default_factory=dict)  # overrides of the architecture's DataConfig
    model_args: Mapping[str, Any] = field(default_factory=dict)  # architecture args these weights need
    partial: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)  # reported by the origin, e.g. {"top1": 74.0}
    origin_url: str | None = None
    origin_format: str | None = None  # converter name: pyslowfast, caffe2, mmaction2, pytorchvideo, ...
    license: str | None = None
    verified: str = ""  # what nlzoo itself checked
    recipe: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.status == "available" and self.source is None:
            raise ValueError(f"tag {self.tag!r} is 'available' but has no weight source")


@dataclass
class ModelConfig:
    """What a built model remembers about itself; saved as ``config.json`` beside its weights."""

    architecture: str
    task: str
    num_classes: int
    data_config: DataConfig
    model_args: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] | None = None
    pretrained_tag: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data_config"] = self.data_config.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        data = dict(data)
        data["data_config"] = DataConfig.from_dict(data.get("data_config", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
