"""Person crops for top-down pose: box -> crop window, the crop's affine matrix, and the warp itself.

Coordinates are pixel indices (pixel centres at integers). A crop is described by a 2x3 matrix that maps
image coordinates to crop coordinates; its inverse maps predictions back to the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

# SimpleBaseline enlarges each person box by 25% so that limbs at the box edge stay inside the crop.
BOX_PADDING = 1.25


def box_to_window(
    box: Sequence[float], *, aspect_ratio: float, padding: float = BOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and (w, h) of the crop window for a COCO box ``[x, y, w, h]``.

    The box is widened or heightened to the input's ``aspect_ratio`` (W / H), keeping its centre, then
    scaled by ``padding``.
    """
    x, y, w, h = (float(v) for v in box)
    centre = np.array([x + w / 2, y + h / 2])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return centre, np.array([w, h]) * padding


def crop_matrix(
    centre: np.ndarray,
    window: np.ndarray,
    out_size: Sequence[int],
    *,
    rotation: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """The 2x3 image -> crop matrix for a window of ``window`` (w, h) pixels around ``centre``.

    Args:
        centre: (x, y) of the window centre in the image.
        window: (w, h) of the window in image pixels.
        out_size: (H, W) of the crop.
        rotation: degrees; the image content turns counter-clockwise in the crop.
        flip: mirror the crop horizontally.
    """
    out_h, out_w = out_size
    theta = math.radians(rotation)
    cos, sin = math.cos(theta), math.sin(theta)
    rotate = np.array([[cos, sin], [-sin, cos]])  # counter-clockwise on screen (y points down)
    scale = np.diag([out_w / window[0], out_h / window[1]])
    linear = scale @ rotate
    offset = np.array([(out_w - 1) / 2, (out_h - 1) / 2]) - linear @ np.asarray(centre, dtype=float)
    matrix = np.concatenate([linear, offset[:, None]], axis=1)
    if flip:
        matrix = np.array([[-1.0, 0.0, out_w - 1], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    return matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_crop(image: Image.Image, matrix: np.ndarray, out_size: Sequence[int]) -> Image.Image:
    """The (H, W) crop of ``image`` under the image -> crop ``matrix``, bilinear, black outside the image.

    Pillow samples the source at ``A (q + 0.5) + t`` in edge coordinates (pixel ``i`` spans ``[i, i + 1)``),
    so the centre-based inverse matrix is shifted by half a pixel on both sides.
    """
    inverse = invert_affine(matrix)
    linear, t = inverse[:, :2], inverse[:, 2]
    t_edges = t + 0.5 - linear @ np.array([0.5, 0.5])
    data = (linear[0, 0], linear[0, 1], t_edges[0], linear[1, 0], linear[1, 1], t_edges[1])
    out_h, out_w = out_size
    return image.transform((out_w, out_h), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 2x3 matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop_tensor(
    image: Image.Image, matrix: np.ndarray, out_size: Sequence[int], *, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """The normalised (3, H, W) float crop of an RGB image: ``(pixels / 255 - mean) / std``."""
    crop = warp_crop(image, matrix, out_size)
    pixels = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
