"""Top-down pose inference: joints of the persons in given boxes, and the skeleton drawn onto the image."""

from __future__ import annotations

import math

import torch
from PIL import Image, ImageDraw
from torch import nn

from ..data.pose_geometry import box_to_window, crop_matrix, crop_tensor, invert_affine
from ..errors import ConfigError
from ..limits import check_limit
from ..models.pose_codec import decode_to_image, flip_test
from ..models.skeleton import Skeleton
from ..precision import inference_precision
from ..zoo.config import DataConfig

_LEFT, _RIGHT, _CENTRE = (255, 140, 0), (0, 160, 255), (80, 220, 80)


def check_boxes(boxes: list[list[float]], image_size: tuple[int, int] | None = None) -> None:
    """Every box is finite with a positive width and height (a degenerate box has no person to crop), and, given
    the image's (width, height), overlaps the image and is at most :data:`MAX_BOX_SCALE` times its size (a box
    far off the image or astronomically large gives made-up or NaN keypoints).

    Raises:
        ConfigError: a degenerate box or one outside the image; LimitError: more boxes than ``NLZOO_MAX_PERSONS``.
    """
    check_limit("persons", len(boxes), what=f"{len(boxes)} person boxes")
    for x, y, w, h in boxes:
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            raise ConfigError(
                f"--box {x:g} {y:g} {w:g} {h:g} is not a person box: give X Y W H in pixels with W > 0 and H > 0"
            )
        if image_size is None:
            continue
        width, height = image_size
        if x >= width or y >= height or x + w <= 0 or y + h <= 0 or max(w / width, h / height) > MAX_BOX_SCALE:
            raise ConfigError(
                f"--box {x:g} {y:g} {w:g} {h:g} does not lie on the {width}x{height} image: give X Y W H in its "
                f"pixels, overlapping it and at most {MAX_BOX_SCALE}x its size"
            )


MAX_BOX_SCALE = 4  # a person box may reach past the image (a cut-off person), not be many times larger


def whole_image_box(image: Image.Image) -> list[list[float]]:
    """One person box (X, Y, W, H) covering the whole image: the box when none is given."""
    return [[0.0, 0.0, float(image.width), float(image.height)]]


def person_crops(
    image: Image.Image, boxes: list[list[float]], data_config: DataConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's inputs for N person boxes (N, C, H, W), and each crop's crop-to-image affine (N, 2, 3)."""
    in_h, in_w = data_config.crop_size
    crops, to_image = [], []
    for box in boxes:
        centre, window = box_to_window(box, aspect_ratio=in_w / in_h)
        matrix = crop_matrix(centre, window, (in_h, in_w))
        crops.append(crop_tensor(image, matrix, (in_h, in_w), mean=data_config.mean, std=data_config.std))
        to_image.append(torch.from_numpy(invert_affine(matrix)).float())
    return torch.stack(crops), torch.stack(to_image)


@torch.no_grad()
def predict_keypoints(
    model: nn.Module,
    image: Image.Image,
    boxes: list[list[float]],
    data_config: DataConfig,
    *,
    skeleton: Skeleton | None,
    device: str | torch.device = "cpu",
    precision: str = "auto",
) -> torch.Tensor:
    """(N, K, 3) image-space joints for N person boxes; flip-test when a ``skeleton`` is given.

    The network runs at ``precision`` (see :mod:`nlzoo.precision`); heatmaps are decoded in float32.
    """
    check_boxes(boxes, image.size)
    crops, to_image = person_crops(image, boxes, data_config)
    images = crops.to(device)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with inference_precision(precision, device):
            return model(x).float()

    heatmaps = flip_test(forward, images, skeleton.flip_index) if skeleton is not None else forward(images)
    return decode_to_image(heatmaps, to_image.to(device), tuple(data_config.crop_size)).cpu()


def draw_skeleton(
    image: Image.Image, keypoints: torch.Tensor, skeleton: Skeleton | None, *, threshold: float
) -> Image.Image:
    """A copy of ``image`` with limbs and joints above ``threshold`` drawn (left orange, right blue)."""
    canvas = image.copy()
    draw = ImageDraw.Draw(canvas)
    size = max(2, round(max(image.size) / 150))
    names = skeleton.names if skeleton else ()
    for person in keypoints.tolist():
        shown = [c > threshold for _, _, c in person]
        for a, b in skeleton.edges if skeleton else ():
            if shown[a] and shown[b]:
                draw.line([tuple(person[a][:2]), tuple(person[b][:2])], fill=_colour(names[b]), width=size)
        for j, (x, y, _) in enumerate(person):
            if shown[j]:
                colour = _colour(names[j]) if names else _CENTRE
                draw.ellipse([x - size, y - size, x + size, y + size], fill=colour, outline=(0, 0, 0))
    return canvas


def _colour(name: str) -> tuple[int, int, int]:
    if name.startswith("left"):
        return _LEFT
    return _RIGHT if name.startswith("right") else _CENTRE
