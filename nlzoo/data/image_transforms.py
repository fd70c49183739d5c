"""Image transforms built by timm's ``create_transform`` from a model's :class:`~nlzoo.zoo.DataConfig`.

Training: random resized crop to ``crop_size`` (timm's ``RandomResizedCropAndInterpolation``), horizontal
flip, colour jitter, optional RandAugment / AutoAugment and random erasing. Evaluation: resize the short side
to ``crop_size / crop_pct``, centre crop ``crop_size``. Both end with ``(x - mean) / std`` on [0, 1] pixels,
so an nlzoo model sees exactly what timm's evaluation of its weights used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from PIL import Image
from timm.data import DEFAULT_CROP_PCT, create_transform

from ..errors import ConfigError
from ..limits import check_resize
from ..zoo import DataConfig

ImageTransform = Callable[[Image.Image], torch.Tensor]


def train_image_transform(
    config: DataConfig,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    hflip: float = 0.5,
    color_jitter: float = 0.4,
    auto_augment: str | None = None,
    re_prob: float = 0.0,
) -> ImageTransform:
    """The training transform (timm's defaults unless given).

    Args:
        config: the model's data config (crop size, interpolation, mean/std).
        scale: area fraction range of the random resized crop.
        hflip: horizontal flip probability.
        color_jitter: brightness/contrast/saturation jitter strength (0 disables it).
        auto_augment: timm policy string, e.g. ``"rand-m9-mstd0.5-inc1"`` (RandAugment) or ``"original"``.
        re_prob: random-erasing probability.

    Raises:
        ValueError: ``scale`` is not an increasing pair in (0, 1].
    """
    low, high = scale
    if not 0 < low <= high <= 1:
        raise ConfigError(f"scale must be (low, high) with 0 < low <= high <= 1; got {tuple(scale)}")
    return create_transform(
        (3, *config.crop_size),
        is_training=True,
        scale=(low, high),
        hflip=hflip,
        color_jitter=color_jitter,
        auto_augment=auto_augment,
        re_prob=re_prob,
        interpolation=config.interpolation,
        mean=config.mean,
        std=config.std,
    )


def eval_image_transform(config: DataConfig) -> ImageTransform:
    """Resize to ``crop_size / crop_pct`` (timm's default crop_pct 0.875 when unset), centre crop, normalise.

    The resize keeps the aspect ratio, so a narrow strip (20000 x 2 pixels: a 1 KB file) would grow to
    gigabytes before the crop; its resized size is checked against ``NLZOO_MAX_IMAGE_PIXELS`` first
    (:class:`~nlzoo.errors.LimitError`).
    """
    transform = create_transform(
        (3, *config.crop_size),
        is_training=False,
        interpolation=config.interpolation,
        mean=config.mean,
        std=config.std,
        crop_pct=config.crop_pct,
    )
    # timm's resize target, and its scale: the image is scaled until it covers the target (aspect kept).
    target = [math.floor(side / (config.crop_pct or DEFAULT_CROP_PCT)) for side in config.crop_size]

    def bounded(image: Image.Image) -> torch.Tensor:
        factor = max(target[0] / image.height, target[1] / image.width)
        check_resize(image.width, image.height, factor)
        return transform(image)

    return bounded
