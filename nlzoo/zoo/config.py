"""Metadata carried by every zoo model: its data config, the pretrained tags, and the saved model config.

Plain frozen dataclasses with ``to_dict``/``from_dict`` so they round-trip through ``config.json``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import nn

from ..errors import ConfigError

Task = Literal["video-classification", "image-classification", "pose-estimation", "detection", "keypoints"]
TASKS: tuple[str, ...] = ("video-classification", "image-classification", "pose-estimation", "detection", "keypoints")

# Kinetics statistics used by the authors (Caffe2 114.75 / 57.375 on 0-255) and PySlowFast (0.45 / 0.225).
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# timm / torchvision resampling names a data config may carry.
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "box", "hamming", "lanczos", "area", "random")


def check_num_classes(value: Any, *, field: str = "num_classes") -> int:
    """``value`` if it is a usable number of classes (an int >= 1), else one :class:`ConfigError` line.

    Raises:
        ConfigError: ``-3``, ``0``, ``"10"``, ``10.5``, ``True``...: says what was given and what is accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field} must be a whole number >= 1 (the number of output classes); got {value!r}")
    return value


def _positive_int(value: Any, field: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        kind = "a whole number >= 1" + (" or null" if optional else "")
        raise ConfigError(f"{field} must be {kind}; got {value!r}")


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{field} must be a finite number; got {value!r}")
    return float(value)


def _sequence(value: Any, field: str, length: int) -> list[Any]:
    if not isinstance(value, list | tuple) or len(value) != length:
        raise ConfigError(f"{field} must be a list of {length} values; got {value!r}")
    return list(value)


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
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "data_config") -> DataConfig:
        """A data config read from a file, every field checked (:meth:`validate`).

        Raises:
            ConfigError: an unknown key or a bad value, naming the field (``data_config.std[1]``).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object of data settings; got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown {where} keys {unknown}; known: {sorted(names)}")
        config = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        config.validate(where=where)
        return config

    def validate(self, *, where: str = "data_config") -> None:
        """Refuse values that would fail (or silently mislead) at prediction time: sizes that are not
        positive whole numbers, a std of zero, a mean/std that is not 3 numbers, an unknown interpolation.

        Raises:
            ConfigError: naming the first bad field.
        """
        for i, size in enumerate(_sequence(self.crop_size, f"{where}.crop_size", 2)):
            _positive_int(size, f"{where}.crop_size[{i}]")
        for i, value in enumerate(_sequence(self.mean, f"{where}.mean", 3)):
            _number(value, f"{where}.mean[{i}]")
        for i, value in enumerate(_sequence(self.std, f"{where}.std", 3)):
            if _number(value, f"{where}.std[{i}]") <= 0:
                raise ConfigError(f"{where}.std[{i}] must be > 0 (inputs are divided by it); got {value!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"{where}.interpolation must be one of {', '.join(INTERPOLATIONS)}; got {self.interpolation!r}"
            )
        for name in ("num_frames", "sampling_rate", "test_scale", "test_clips", "test_crops"):
            _positive_int(getattr(self, name), f"{where}.{name}", optional=True)
        if self.train_scale is not None:
            low, high = _sequence(self.train_scale, f"{where}.train_scale", 2)
            _positive_int(low, f"{where}.train_scale[0]")
            _positive_int(high, f"{where}.train_scale[1]")
            if low > high:
                raise ConfigError(f"{where}.train_scale must be [low, high] with low <= high; got {[low, high]}")
        if self.crop_pct is not None and not 0 < _number(self.crop_pct, f"{where}.crop_pct") <= 1:
            raise ConfigError(f"{where}.crop_pct must be in (0, 1]; got {self.crop_pct!r}")

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
    origin_sha256: str | None = None  # the published file's sha256 when known (checked on download and cache hits)
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
        """A model config read from ``config.json``, every field checked; keys it does not know are ignored
        (``format_version``, ``weights_sha256``, ...).

        Raises:
            ConfigError: a missing or bad field, named (``label_names has 3 names but num_classes is 5``).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a model config must be a JSON object; got {type(data).__name__}")
        missing = [name for name in ("architecture", "task", "num_classes") if name not in data]
        if missing:
            raise ConfigError(f"missing field(s) {', '.join(missing)}")
        data = dict(data)
        data["data_config"] = DataConfig.from_dict(data.get("data_config", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in names})
        config.validate()
        return config

    def validate(self) -> None:
        """Check every field's type and the fields against each other (labels vs num_classes).

        Raises:
            ConfigError: naming the first bad field.
        """
        if not isinstance(self.architecture, str) or not self.architecture:
            raise ConfigError(f"architecture must be a model name; got {self.architecture!r}")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        check_num_classes(self.num_classes)
        for name in ("model_args", "provenance"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"{name} must be an object with string keys; got {value!r}")
        if self.pretrained_tag is not None and (not isinstance(self.pretrained_tag, str) or not self.pretrained_tag):
            raise ConfigError(f"pretrained_tag must be a tag name or null; got {self.pretrained_tag!r}")
        labels = self.label_names
        if labels is not None:
            if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                raise ConfigError("label_names must be a list of strings (one per class) or null")
            if len(labels) != self.num_classes:
                raise ConfigError(
                    f"label_names has {len(labels)} names but num_classes is {self.num_classes}; give one name per "
                    "class (or null)"
                )
        self.data_config.validate()
