"""Draw a detector's output onto its image: instance masks as tinted overlays, boxes, class names and scores.

Keypoints are drawn by the skeleton drawer of ``nlzoo predict-image``; this module does what is specific to
detection. Colours are fixed per class, so one class looks the same in every image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..data.synthetic_common import PALETTE

MASK_ALPHA = 0.45


def class_colour(label: int) -> tuple[int, int, int]:
    return PALETTE[label % len(PALETTE)]


def keep_confident(output: Mapping[str, torch.Tensor], threshold: float) -> dict[str, torch.Tensor]:
    """The detections scoring at least ``threshold`` (every per-detection field filtered alike)."""
    keep = output["scores"] >= threshold
    return {k: v[keep] if v.dim() and len(v) == len(keep) else v for k, v in output.items()}


def draw_detections(
    image: Image.Image,
    output: Mapping[str, torch.Tensor],
    label_names: Sequence[str] | None,
    *,
    mask_threshold: float = 0.5,
) -> Image.Image:
    """A copy of ``image`` (RGB) with masks (N, 1, H, W probabilities), boxes and ``name score`` labels drawn."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    labels = output["labels"].tolist()
    if "masks" in output:
        for mask, label in zip(output["masks"][:, 0].cpu().numpy() >= mask_threshold, labels, strict=True):
            pixels[mask] = (1 - MASK_ALPHA) * pixels[mask] + MASK_ALPHA * np.asarray(class_colour(label))
    canvas = Image.fromarray(pixels.round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(image.size) / 300))
    for box, label, score in zip(output["boxes"].tolist(), labels, output["scores"].tolist(), strict=True):
        colour = class_colour(label)
        draw.rectangle(box, outline=colour, width=width)
        name = label_names[label] if label_names and 0 <= label < len(label_names) else str(label)
        text = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), text)
        lift = bottom - top + 2
        draw.rectangle([left, top - lift, right + 2, bottom - lift], fill=colour)
        draw.text((box[0] + 1, box[1] - lift), text, fill=(0, 0, 0))
    return canvas
