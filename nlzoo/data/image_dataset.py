"""A dataset of labelled image files whose unreadable images are skipped and counted, never a crash.

Each unreadable image (missing, empty, truncated, not an image, or over ``NLZOO_MAX_IMAGE_PIXELS`` as
stored or once resized) raises a :class:`SkippedImageWarning`
naming its path, and samples carry a ``skipped`` count that the tasks log per epoch:

- training replaces the image by another one drawn from the item's own random stream (the substitute keeps
  its own label), so batches keep their size and DDP ranks stay in step;
- evaluation drops the image from its batch.

Training keys are ``(index, seed)`` pairs from :class:`~nlzoo.data.samplers.EpochSampler`: the random crop,
flip and augmentations of a sample depend on its seed alone (whatever the worker count, and after a resume).
Samples are dicts: ``image`` (C, H, W) float, ``label`` (class index), ``index``, ``skipped``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import BrokenDatasetError, ConfigError, ImageDecodeError, LimitError
from ..limits import check_limit, limit
from .image_transforms import ImageTransform
from .video_sources import VideoItem

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
Sample = dict[str, Any]


class SkippedImageWarning(UserWarning):
    """An image could not be read and was skipped."""


def read_image(path: str, *, apply_exif_orientation: bool = False) -> Image.Image:
    """The fully decoded RGB image at ``path``.

    ``apply_exif_orientation`` turns the pixels upright as a viewer shows them (a phone's portrait photo is
    stored sideways with an EXIF Orientation tag): what the inference commands want. Datasets keep the
    stored pixels, the frame their annotations (COCO's boxes and keypoints) are drawn in, as timm and
    torchvision read them.

    Raises:
        ImageDecodeError: the file is missing, truncated, or not an image PIL can read.
        LimitError: the header declares more pixels than ``NLZOO_MAX_IMAGE_PIXELS`` (checked before decoding,
            so a decompression bomb allocates nothing).
    """
    bound = limit("image_pixels")  # a bad NLZOO_MAX_IMAGE_PIXELS is its own error, not this image's
    if Image.MAX_IMAGE_PIXELS is not None and bound > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = bound  # Pillow's own bomb check must not undercut a limit the user raised
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below says it in one line
            image = Image.open(path)  # reads the header only
        with image:
            check_limit("image_pixels", image.width * image.height, what=f"{path}: {image.width}x{image.height} pixels")
            rgb = as_rgb(image)  # decodes every pixel now, so truncation shows here
            method = _EXIF_TRANSPOSE.get(_exif_orientation(image, path)) if apply_exif_orientation else None
            return rgb if method is None else rgb.transpose(method)
    except Image.DecompressionBombError as err:  # Pillow's own (higher) bound, hit while reading the header
        raise LimitError(f"{path}: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL's error types vary
        if isinstance(err, LimitError):
            raise
        raise ImageDecodeError(f"{path}: {err}") from err


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def as_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any mode. 16-bit grey (a 16-bit PNG or TIFF) is scaled to 8 bits, where Pillow's
    ``convert`` clips it (a 16-bit image became white); 32-bit integer pixels are read as 16-bit when they
    fit (older Pillow opens 16-bit PNGs so).

    Raises:
        ValueError: floating-point pixels or integers beyond 16 bits, whose 8-bit range nothing states.
    """
    if image.mode == "F" or image.mode.startswith("I;32") or image.mode.startswith("F;"):
        raise ValueError(
            f"its pixels are {image.mode} (floating point or 32-bit) with no known 8-bit range; "
            "save it with 8 or 16 bits per channel"
        )
    if image.mode not in _SIXTEEN_BIT_MODES:
        return image.convert("RGB")
    pixels = np.asarray(image)  # uint16 or int32: no wider copy until the range is known
    low, high = (int(pixels.min()), int(pixels.max())) if pixels.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(
            f"its 32-bit integer pixels run from {low} to {high}, beyond 16 bits; save it with 8 or 16 bits per channel"
        )
    grey = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # 0 -> 0, 65535 -> 255, rounded
    return Image.fromarray(grey, mode="L").convert("RGB")


# EXIF Orientation (tag 0x0112) -> the transpose that shows the stored pixels upright (EXIF 2.3, section 4.6.4).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _exif_orientation(image: Image.Image, path: str) -> int:
    """The image's EXIF Orientation; 1 (as stored) when it has none, or EXIF data Pillow cannot parse (logged:
    a broken EXIF block must not hide good pixels)."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception as err:  # Pillow's EXIF parser raises many types on corrupt data
        log.warning("%s: unreadable EXIF data (%s); the pixels are used as stored", path, err)
        return 1
    return value if isinstance(value, int) else 1


@contextlib.contextmanager
def seeded_random(seed: int) -> Iterator[None]:
    """Seed python's, numpy's and torch's CPU generators (which timm's transforms draw from) for one sample,
    then put the previous states back so the caller's random streams are untouched."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class ImageFileDataset(Dataset):
    """Labelled image files, transformed; see the module docstring for skipping.

    Args:
        items: ``(path, labels)`` items (single-label), e.g. from :func:`~nlzoo.data.scan_class_folders`.
        transform: PIL image -> (C, H, W) tensor.
        train: replace unreadable images (training) instead of dropping them (evaluation).
        max_retries: unreadable images replaced in a row before giving up (the dataset is then broken).
    """

    def __init__(
        self, items: Sequence[VideoItem], *, transform: ImageTransform, train: bool, max_retries: int = 10
    ) -> None:
        if not items:
            raise ConfigError("no images to load")
        multi = next((it for it in items if len(it.labels) != 1), None)
        if multi is not None:
            raise ConfigError(f"{multi.path} has labels {multi.labels}; image datasets are single-label")
        self.items, self.transform, self.train, self.max_retries = list(items), transform, train, max_retries

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        index, seed = key if isinstance(key, tuple) else (key, int(torch.randint(2**62, ())))
        if not self.train:
            return self._evaluation_sample(index)
        generator = torch.Generator().manual_seed(seed)
        failures: list[str] = []
        for _ in range(self.max_retries + 1):
            try:
                image = read_image(self.items[index].path)
            except (ImageDecodeError, LimitError) as err:
                failures.append(_warn_skipped(err, self.items[index].path))
                index = int(torch.randint(len(self.items), (), generator=generator))
                continue
            with seeded_random(seed):
                tensor = self.transform(image)
            return {"image": tensor, "label": self.items[index].label, "index": index, "skipped": len(failures)}
        raise BrokenDatasetError(
            f"{len(failures)} images in a row could not be read; the dataset looks broken. Last errors: "
            + "; ".join(failures[-3:])
        )

    def _evaluation_sample(self, index: int) -> Sample:
        item = self.items[index]
        try:
            image = self.transform(read_image(item.path))
        except (ImageDecodeError, LimitError) as err:  # unreadable, or too large to decode or to resize
            _warn_skipped(err, item.path)
            return {"image": None, "label": item.label, "index": index, "skipped": 1}
        return {"image": image, "label": item.label, "index": index, "skipped": 0}


def _warn_skipped(err: Exception, path: str) -> str:
    """Warn that the image at ``path`` is skipped; returns why, naming the path."""
    reason = str(err) if str(err).startswith(path) else f"{path}: {err}"
    warnings.warn(f"skipping unreadable image {reason}", SkippedImageWarning, stacklevel=3)
    return reason


def collate_images(samples: Sequence[Sample]) -> Sample:
    """Stack the readable samples: image (B, C, H, W), label (B,), index (B,); skipped = total dropped or replaced.

    A batch whose images were all unreadable has an empty ``image`` tensor (the tasks skip it).
    """
    kept = [s for s in samples if s["image"] is not None]
    return {
        "image": torch.stack([s["image"] for s in kept]) if kept else torch.empty(0),
        "label": torch.tensor([s["label"] for s in kept], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in kept], dtype=torch.long),
        "skipped": torch.tensor(sum(s["skipped"] for s in samples)),
    }
