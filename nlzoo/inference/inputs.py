"""What the inference commands share: loading a model to run, and turning a file into its input tensor.

Videos are decoded and cut into test views exactly as :mod:`nlzoo.data` does for evaluation (uniformly
spaced clips, short-side resize, spatial crops, the model's mean/std); images go through the image task's
evaluation transform (timm's: the model's interpolation and crop_pct), so a command scores an image exactly
as validation did.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.clip_sampling import clip_span
from ..data.image_dataset import IMAGE_EXTENSIONS
from ..data.image_dataset import read_image as read_rgb_image
from ..data.image_transforms import eval_image_transform
from ..data.video_dataset import check_clip_config, read_views
from ..data.video_io import open_video
from ..data.video_transforms import EvalViewTransform
from ..errors import ConfigError, WeightsError
from ..limits import check_limit
from ..models.inference import prepare_for_inference
from ..tasks.export import model_from_checkpoint
from ..zoo import DataConfig, load
from ..zoo.factory import HUB_PREFIX, TIMM_PREFIX, is_path, registry_entry
from ..zoo.registry import split_tag


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device this machine has (a ``--device`` typo or a missing GPU is one line).

    Raises:
        ConfigError: not a device name, or no such device here.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"--device {device!r} is not a device; use --device cpu (or cuda, cuda:1, mps, ...)"
        ) from None
    backend = getattr(torch, resolved.type, None)
    available = resolved.type == "cpu" or (backend is not None and backend.is_available())
    if available and resolved.type == "cuda" and resolved.index is not None:
        available = resolved.index < torch.cuda.device_count()
    if not available:
        raise ConfigError(f"--device {device!r}: this machine has no such device; use --device cpu")
    return resolved


def check_trained(name: str) -> None:
    """Refuse a registry name whose weights leave part of the network untrained (it would predict noise).

    A bare architecture means its default tag. Tags may lack only non-local blocks (identities at init, so the
    network predicts what its base does); a tag without its head (e.g. ImageNet backbone weights under a pose
    head) is for fine-tuning, not for predictions.

    Raises:
        WeightsError: no tag, or a tag whose weights lack more than non-local blocks.
    """
    arch, tag_name = split_tag(name)
    entry = registry_entry(arch, name)  # a same-named folder here gets a hint
    tag = entry.tag(tag_name) if tag_name else (entry.tag(entry.default_tag) if entry.default_tag else None)
    if tag is None:
        raise WeightsError(
            f"{arch} has no pretrained weights, and an untrained network would only predict noise; give a "
            "model folder, an nlzoo fit checkpoint (.ckpt) or a published arch.tag (`nlzoo models --pretrained`)"
        )
    untrained = [p for p in tag.partial if "_nonlocal" not in p]
    if untrained:
        raise WeightsError(
            f"{arch}.{tag.tag} holds no weights for {', '.join(untrained)} (they are for fine-tuning), so its "
            "predictions would be noise; fine-tune it (nlzoo fit) and pass the checkpoint (.ckpt) or model folder"
        )


def load_for_inference(name: str, *, device: str | torch.device = "cpu") -> nn.Module:
    """A model with weights, ready to predict on ``device``: eval mode, channels-last,
    BatchNorm folded into the convolutions (see :func:`nlzoo.models.inference.prepare_for_inference`).

    ``name`` follows :func:`nlzoo.load`'s rule: a model folder path (``./x``, ``/abs/x``, ``local-dir:x``),
    ``hf-hub:org/repo``, ``arch.tag``, a bare architecture (its default tag: a network without weights would
    only predict noise; a folder of that name is not used), or an ``nlzoo fit`` checkpoint (``.ckpt``).

    Raises:
        WeightsError: the architecture has no pretrained tag, or its tag leaves a part untrained (nothing
            untrained runs unasked).
        OriginUnavailableError / HubUnavailableError: the weights are not cached and cannot be downloaded.
    """
    device = resolve_device(device)  # before loading (and perhaps downloading) anything
    if name.endswith(".ckpt"):
        model = model_from_checkpoint(name)
    elif name.startswith((HUB_PREFIX, TIMM_PREFIX)) or is_path(name):
        model = load(name)
    else:
        check_trained(name)
        model = load(name)
    if model.nlzoo_config.task in ("detection", "keypoints"):  # list-of-images inputs: no BN folding by tracing
        return model.to(device).eval()
    return prepare_for_inference(model, device=device)


def is_image(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_video_views(
    path: str | os.PathLike[str], config: DataConfig, *, num_clips: int, num_crops: int, backend: str = "pyav"
) -> torch.Tensor:
    """Test views of a video: (num_clips * num_crops, C, T, H, W), clip-major, normalised for the model.

    Raises:
        InputNotFoundError: nothing at ``path``, or a directory.
        VideoDecodeError: not a video, or its frames cannot be decoded.
        ConfigError: the data config does not describe clips.
    """
    check_clip_config(config)
    check_limit("views", num_clips * num_crops, what=f"{num_clips}x{num_crops} views")
    decoded = num_clips * config.num_frames  # type: ignore[operator]
    check_limit("decoded_frames", decoded, what=f"{num_clips} clips of {config.num_frames} frames")
    transform = EvalViewTransform(config, num_crops=num_crops)
    _warn_if_short(path, config, backend)
    frames = read_views(os.fspath(path), config, num_clips=num_clips, backend=backend, threads=0)  # all cores
    return torch.cat([transform(clip) for clip in frames.split(config.num_frames)])  # type: ignore[arg-type]


class ShortVideoWarning(UserWarning):
    """A video has fewer frames than one clip spans: its frames are repeated to fill the clips."""


def _warn_if_short(path: str | os.PathLike[str], config: DataConfig, backend: str) -> None:
    span = clip_span(config.num_frames, config.sampling_rate)  # type: ignore[arg-type]
    with open_video(path, backend=backend) as reader:  # the frame index stays cached for the read that follows
        frames = reader.num_frames
    if frames < span:
        warnings.warn(
            f"{path} has {frames} frame{'s' * (frames != 1)}, fewer than the {span} one clip spans "
            f"({config.num_frames} frames at a sampling rate of {config.sampling_rate}): frames are repeated to "
            "fill the clips, so the prediction sees little motion or none",
            ShortVideoWarning,
            stacklevel=3,
        )


def read_image(path: str | os.PathLike[str], config: DataConfig) -> torch.Tensor:
    """An image file as an image classifier's input (1, C, H, W); see :func:`classifier_input`.

    Raises:
        ImageDecodeError: a missing file, or one Pillow cannot read.
        LimitError: more pixels than ``NLZOO_MAX_IMAGE_PIXELS``.
    """
    return classifier_input(read_photo(path), config)


def read_photo(path: str | os.PathLike[str]) -> Image.Image:
    """An image file as RGB, upright as a viewer shows it (its EXIF orientation applied): what the inference
    commands and the page see, draw on and return.

    Raises:
        ImageDecodeError: a missing file, or one Pillow cannot read.
        LimitError: more pixels than ``NLZOO_MAX_IMAGE_PIXELS``.
    """
    return read_rgb_image(os.fspath(path), apply_exif_orientation=True)


def classifier_input(image: Image.Image, config: DataConfig) -> torch.Tensor:
    """An RGB image as an image classifier's input (1, C, H, W): the image task's evaluation transform
    (:func:`~nlzoo.data.image_transforms.eval_image_transform`: resize to ``crop / crop_pct`` with the model's
    interpolation, centre crop, normalise), so a command scores an image as validation did."""
    return eval_image_transform(config)(image).unsqueeze(0)


def to_display(clip: torch.Tensor, config: DataConfig) -> np.ndarray:
    """Undo the normalisation of one (C, T, H, W) clip or (C, H, W) image: (T, H, W, 3) uint8 frames."""
    if clip.dim() == 3:
        clip = clip.unsqueeze(1)
    mean = torch.tensor(config.mean, device=clip.device).view(-1, 1, 1, 1)
    std = torch.tensor(config.std, device=clip.device).view(-1, 1, 1, 1)
    pixels = (clip.float() * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).cpu().numpy()
