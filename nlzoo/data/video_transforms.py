"""Clip transforms on tensors, sized by a model's :class:`~nlzoo.zoo.DataConfig`.

Decoded frames arrive as (T, H, W, 3) uint8. Resizing and cropping stay in uint8 (channels-last, torch's
fast path); conversion to float and normalisation come last, on the crop only. Outputs are (C, T, H, W)
float clips with ``(x / 255 - mean) / std`` per channel.

Training (the paper / PySlowFast): random short side in ``train_scale``, random ``crop_size`` crop, random
horizontal flip. Testing: short side ``test_scale``, then ``num_crops`` crops spread along the longer side
(3: left/centre/right, or top/centre/bottom for portrait video; 1: centre).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..limits import check_resize
from ..zoo import DataConfig


def to_tchw(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W, C) decoded frames -> a (T, C, H, W) view (channels-last in memory, no copy)."""
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected decoded frames (T, H, W, 3); got {tuple(frames.shape)}")
    return frames.permute(0, 3, 1, 2)


def resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Scale (T, C, H, W) frames so the shorter side is ``size``, keeping the aspect ratio (bilinear, antialiased)."""
    height, width = frames.shape[-2:]
    short = min(height, width)
    if short == size:
        return frames
    check_resize(width, height, size / short)  # a narrow strip would grow to gigabytes
    new = (size, round(width * size / height)) if height <= width else (round(height * size / width), size)
    return F.interpolate(frames, size=new, mode="bilinear", antialias=True, align_corners=False)


def resize_frame(frame: torch.Tensor, size: int) -> torch.Tensor:
    """One decoded (H, W, 3) uint8 frame scaled so its shorter side is ``size``: exactly what
    :func:`resize_short_side` does to it within a clip, done by readers as each frame is decoded so that a 4K
    video never holds more than one frame at full size."""
    return resize_short_side(to_tchw(frame[None]), size)[0].permute(1, 2, 0)


def crop(frames: torch.Tensor, top: int, left: int, size: Sequence[int]) -> torch.Tensor:
    """The (h, w) = ``size`` window of (..., H, W) frames at (top, left)."""
    return frames[..., top : top + size[0], left : left + size[1]]


def random_crop_origin(
    height: int, width: int, size: Sequence[int], generator: torch.Generator | None = None
) -> tuple[int, int]:
    """A uniformly random (top, left) for a ``size`` crop inside a height x width frame."""
    top = int(torch.randint(height - size[0] + 1, (), generator=generator))
    left = int(torch.randint(width - size[1] + 1, (), generator=generator))
    return top, left


def view_crop_origins(height: int, width: int, size: Sequence[int], num_crops: int) -> list[tuple[int, int]]:
    """(top, left) of ``num_crops`` crops evenly spread along the longer side, centred on the other.

    ``num_crops=3`` gives the paper's left/centre/right crops (top/centre/bottom for portrait frames);
    ``num_crops=1`` the centre crop.
    """
    if num_crops < 1:
        raise ConfigError(f"num_crops must be >= 1; got {num_crops}")
    room_y, room_x = height - size[0], width - size[1]

    def spread(room: int) -> list[int]:
        return [room // 2] if num_crops == 1 else [round(room * i / (num_crops - 1)) for i in range(num_crops)]

    if width >= height:
        return [(room_y // 2, x) for x in spread(room_x)]
    return [(y, room_x // 2) for y in spread(room_y)]


def normalize(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(T, C, H, W) uint8 frames -> (C, T, H, W) float32 ``(x / 255 - mean) / std``."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(-1, 1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)]).view(-1, 1, 1, 1)
    return frames.permute(1, 0, 2, 3).float().mul_(scale).sub_(shift)


def _check_scale(config: DataConfig, short_side: int, what: str) -> None:
    if short_side < max(config.crop_size):
        raise ConfigError(
            f"{what} short side {short_side} is smaller than crop_size {tuple(config.crop_size)}; "
            "raise the scale or lower crop_size in the data config"
        )


class TrainClipTransform:
    """Random short-side scale, random crop, random flip, normalise: (T, H, W, 3) uint8 -> (C, T, H, W) float.

    Args:
        config: the model's data config (``train_scale``, ``crop_size``, ``mean``, ``std``).
        flip: apply random horizontal flips.
    """

    def __init__(self, config: DataConfig, *, flip: bool = True) -> None:
        if config.train_scale is None:
            raise ConfigError("the data config has no train_scale (short-side range [lo, hi]) for training")
        lo, hi = config.train_scale
        if not 0 < lo <= hi:
            raise ConfigError(f"train_scale must be [lo, hi] with 0 < lo <= hi; got {config.train_scale}")
        _check_scale(config, lo, "train_scale")
        self.config, self.flip = config, flip

    def draw_scale(self, generator: torch.Generator | None = None) -> int:
        """A random short side in ``train_scale`` (drawn first, so a reader can resize frames as it decodes)."""
        lo, hi = self.config.train_scale  # type: ignore[misc]
        return int(torch.randint(lo, hi + 1, (), generator=generator))

    def __call__(
        self, frames: torch.Tensor, *, generator: torch.Generator | None = None, scale: int | None = None
    ) -> torch.Tensor:
        """``scale``: the short side from :meth:`draw_scale` (drawn here when None)."""
        size = self.config.crop_size
        frames = resize_short_side(to_tchw(frames), self.draw_scale(generator) if scale is None else scale)
        frames = crop(frames, *random_crop_origin(*frames.shape[-2:], size, generator), size)
        if self.flip and bool(torch.rand((), generator=generator) < 0.5):
            frames = frames.flip(-1)
        return normalize(frames, self.config.mean, self.config.std)


class EvalViewTransform:
    """Short side ``test_scale`` then ``num_crops`` spatial crops: (T, H, W, 3) uint8 -> (num_crops, C, T, H, W).

    Args:
        config: the model's data config (``test_scale``, ``crop_size``, ``mean``, ``std``).
        num_crops: spatial views per clip (the paper: 3).
    """

    def __init__(self, config: DataConfig, *, num_crops: int) -> None:
        if config.test_scale is None:
            raise ConfigError("the data config has no test_scale (short side at test time)")
        if num_crops < 1:
            raise ConfigError(f"num_crops must be >= 1; got {num_crops}")
        _check_scale(config, config.test_scale, "test_scale")
        self.config, self.num_crops = config, num_crops

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        size = self.config.crop_size
        frames = resize_short_side(to_tchw(frames), self.config.test_scale)  # type: ignore[arg-type]
        origins = view_crop_origins(*frames.shape[-2:], size, self.num_crops)
        return torch.stack([normalize(crop(frames, y, x, size), self.config.mean, self.config.std) for y, x in origins])
