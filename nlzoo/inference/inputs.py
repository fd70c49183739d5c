"""What the inference commands share: loading a model to run, and turning a file into its input tensor.

Videos are decoded and cut into test views exactly as :mod:`nlzoo.data` does for evaluation (uniformly
spaced clips, short-side resize, spatial crops, the model's mean/std); images go through the same
transform as a one-frame clip.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.clip_sampling import uniform_clips
from ..data.image_dataset import IMAGE_EXTENSIONS
from ..data.video_dataset import check_clip_config
from ..data.video_io import open_video
from ..data.video_transforms import EvalViewTransform
from ..models.memory_format import has_3d_convs, to_channels_last
from ..tasks.export import model_from_checkpoint
from ..zoo import DataConfig, load
from ..zoo.factory import HUB_PREFIX, LOCAL_PREFIX


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_for_inference(name: str, *, device: str | torch.device = "cpu") -> nn.Module:
    """A model with weights, in eval mode on ``device``; video networks in channels-last layout (faster,
    see :mod:`nlzoo.models.memory_format`).

    ``name`` is a model folder, ``hf-hub:org/repo``, ``arch.tag``, a bare architecture (then its default
    tag: a network without weights would only predict noise) or an ``nlzoo fit`` checkpoint (``.ckpt``).

    Raises:
        ValueError: the architecture has no pretrained tag.
        FileNotFoundError: the weights must be converted first (the message says how).
    """
    if name.endswith(".ckpt"):
        model = model_from_checkpoint(name)
    elif name.startswith((HUB_PREFIX, LOCAL_PREFIX)) or Path(name).is_dir():
        model = load(name)
    else:
        model = load(name, pretrained=True)
    model = model.to(device).eval()
    return to_channels_last(model) if has_3d_convs(model) else model


def parse_views(text: str) -> tuple[int, int]:
    """``"10x3"`` -> (10, 3): temporal clips x spatial crops (an argparse type)."""
    clips, sep, crops = text.lower().partition("x")
    if not sep or not clips.isdigit() or not crops.isdigit() or int(clips) < 1 or int(crops) < 1:
        raise argparse.ArgumentTypeError(f"views must look like CLIPSxCROPS, e.g. 10x3 or 1x1; got {text!r}")
    return int(clips), int(crops)


def is_image(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_video_views(
    path: str | os.PathLike[str], config: DataConfig, *, num_clips: int, num_crops: int, backend: str = "pyav"
) -> torch.Tensor:
    """Test views of a video: (num_clips * num_crops, C, T, H, W), clip-major, normalised for the model.

    Raises:
        VideoDecodeError: the file is missing or unreadable.
        ValueError: the data config does not describe clips.
    """
    check_clip_config(config)
    transform = EvalViewTransform(config, num_crops=num_crops)
    with open_video(path, backend=backend) as reader:
        clips = uniform_clips(
            reader.num_frames,
            num_clips=num_clips,
            num_frames=config.num_frames,  # type: ignore[arg-type]
            sampling_rate=config.sampling_rate,  # type: ignore[arg-type]
        )
        frames = reader.get_frames([i for clip in clips for i in clip])
    return torch.cat([transform(clip) for clip in frames.split(config.num_frames)])  # type: ignore[arg-type]


def read_image(path: str | os.PathLike[str], config: DataConfig) -> torch.Tensor:
    """An image as the model's centre-crop input (1, C, H, W): short side to ``crop / crop_pct``, crop, normalise.

    Raises:
        FileNotFoundError: no such file.
        ValueError: Pillow cannot read it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: not an image Pillow can read ({err})") from None
    short = round(min(config.crop_size) / (config.crop_pct or 1.0))
    transform = EvalViewTransform(config.replace(test_scale=config.test_scale or short), num_crops=1)
    return transform(torch.from_numpy(pixels.copy()).unsqueeze(0))[:, :, 0]


def to_display(clip: torch.Tensor, config: DataConfig) -> np.ndarray:
    """Undo the normalisation of one (C, T, H, W) clip or (C, H, W) image: (T, H, W, 3) uint8 frames."""
    if clip.dim() == 3:
        clip = clip.unsqueeze(1)
    mean = torch.tensor(config.mean, device=clip.device).view(-1, 1, 1, 1)
    std = torch.tensor(config.std, device=clip.device).view(-1, 1, 1, 1)
    pixels = (clip.float() * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).cpu().numpy()
