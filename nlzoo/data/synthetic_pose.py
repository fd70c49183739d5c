"""A small COCO-format keypoint dataset of drawn stick figures, for tests, demos and the CPU recipe.

It writes what COCO has (``images/{split}/*.png`` and ``annotations/person_keypoints_{split}.json`` with 17
COCO joints), so the same reading, cropping and evaluation code runs as on real data. Figures face the
camera (their left is on the image's right), so left/right is decided by geometry, as in real images, and
a flip with the joint swap gives a consistent label. Some joints are hidden by an occluder (``v=1``) or fall
outside the image (``v=0``). The output depends only on the seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ConfigError
from ..models.skeleton import COCO_PERSON
from .coco_keypoints import CocoKeypointsDataModule

# A front-facing figure of height 1 (head top at y = 0, soles at y = 1); +x is the person's left.
_TEMPLATE = np.array([
    (0.0, 0.08), (0.025, 0.06), (-0.025, 0.06), (0.05, 0.07), (-0.05, 0.07),  # nose, eyes, ears
    (0.11, 0.18), (-0.11, 0.18), (0.16, 0.33), (-0.16, 0.33), (0.18, 0.47), (-0.18, 0.47),  # arms
    (0.08, 0.52), (-0.08, 0.52), (0.09, 0.74), (-0.09, 0.74), (0.09, 0.96), (-0.09, 0.96),  # legs
])  # fmt: skip
# (parent, child, max swing in degrees) in an order where each parent is placed before its child.
_LIMBS = (
    (5, 7, 45), (7, 9, 60), (6, 8, 45), (8, 10, 60), (11, 13, 20), (13, 15, 25), (12, 14, 20), (14, 16, 25),
)  # fmt: skip
_HEAD_RADIUS = 0.06


def generate_synthetic_pose(
    root: str | Path,
    *,
    splits: Sequence[tuple[str, int]] = (("train", 64), ("val", 16)),
    image_size: tuple[int, int] = (160, 160),
    max_people: int = 2,
    seed: int = 0,
) -> Path:
    """Write the dataset under ``root`` and return it.

    Args:
        root: output folder (``images/<split>/`` and ``annotations/person_keypoints_<split>.json``).
        splits: (name, number of images) per split.
        image_size: (H, W) of every image.
        max_people: 1..max_people figures per image, side by side.
        seed: everything drawn depends only on (seed, split, image index).
    """
    if max_people < 1:
        raise ConfigError(f"max_people must be >= 1; got {max_people}")
    root = Path(root)
    for split_index, (split, count) in enumerate(splits):
        image_dir = root / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            rng = np.random.default_rng([seed, split_index, i])
            image, people = _draw_image(rng, image_size, max_people)
            file_name = f"{i + 1:06d}.png"
            image.save(image_dir / file_name)
            images.append({"id": i + 1, "file_name": file_name, "height": image_size[0], "width": image_size[1]})
            for joints, box in people:
                annotations.append(_annotation(len(annotations) + 1, i + 1, joints, box))
        payload = {
            "info": {
                "description": "nlzoo synthetic stick figures",
                "nlzoo_synthetic": _settings(seed, count, image_size),
            },
            "images": images,
            "annotations": annotations,
            "categories": [
                {
                    "id": 1,
                    "name": "person",
                    "supercategory": "person",
                    "keypoints": list(COCO_PERSON.names),
                    "skeleton": [[a + 1, b + 1] for a, b in COCO_PERSON.edges],
                }
            ],
        }
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(payload))
    return root


def _settings(seed: int, count: int, image_size: Sequence[int]) -> dict[str, Any]:
    return {"seed": seed, "images": count, "image_size": list(image_size)}


def _annotation(ann_id: int, image_id: int, joints: np.ndarray, box: list[float]) -> dict[str, Any]:
    keypoints = [round(float(v), 2) for v in joints.reshape(-1)]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "keypoints": keypoints,
        "num_keypoints": int((joints[:, 2] > 0).sum()),
        "bbox": box,
        "area": round(box[2] * box[3], 2),  # stick figures have no mask: the box area stands in for it
        "iscrowd": 0,
    }


def _figure(rng: np.random.Generator) -> np.ndarray:
    """(17, 2) joints of a random pose in figure units."""
    pts = _TEMPLATE.copy()
    pts[:, 0] *= rng.uniform(0.8, 1.25)
    for parent, child, swing in _LIMBS:
        angle = math.radians(rng.uniform(-swing, swing))
        cos, sin = math.cos(angle), math.sin(angle)
        moved = [child] + [j for p, j, _ in _LIMBS if p == child]
        for j in moved:
            d = pts[j] - pts[parent]
            pts[j] = pts[parent] + (cos * d[0] - sin * d[1], sin * d[0] + cos * d[1])
    tilt = math.radians(rng.uniform(-12, 12))
    centre = pts.mean(axis=0)
    d = pts - centre
    return centre + d @ np.array([[math.cos(tilt), math.sin(tilt)], [-math.sin(tilt), math.cos(tilt)]])


def _draw_image(
    rng: np.random.Generator, image_size: tuple[int, int], max_people: int
) -> tuple[Image.Image, list[tuple[np.ndarray, list[float]]]]:
    h, w = image_size
    base = rng.uniform(40, 200, size=3)
    gradient = np.linspace(-30, 30, w)[None, :, None] * rng.uniform(-1, 1, size=3)
    noise = rng.normal(0, 8, size=(h, w, 3))
    image = Image.fromarray(np.clip(base + gradient + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    count = int(rng.integers(1, max_people + 1))
    slot = w / count
    people = []
    for p in range(count):
        height = rng.uniform(0.45, 0.9) * h
        joints = _figure(rng) * height
        centre_x = (p + 0.5) * slot + rng.uniform(-0.15, 0.15) * slot
        joints += (centre_x, rng.uniform(-0.1, 0.25) * h)
        contrast = np.where(base > 120, -1.0, 1.0) * rng.uniform(80, 120, size=3)  # well away from the background
        colour = tuple(int(c) for c in (base + contrast).clip(0, 255))
        width = max(2, int(height / 22))
        for a, b in COCO_PERSON.edges:
            if a >= 5 or b >= 5:  # limbs; the face is the head disc
                draw.line([tuple(joints[a]), tuple(joints[b])], fill=colour, width=width)
        r = _HEAD_RADIUS * height
        cx, cy = joints[:5].mean(axis=0)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        visibility = np.full(17, 2.0)
        if rng.random() < 0.3:  # an occluder hides part of the figure: those joints are labelled, not visible
            j = int(rng.integers(5, 17))
            half = 0.08 * height
            x0, y0 = joints[j] - half
            draw.rectangle([x0, y0, x0 + 2 * half, y0 + 2 * half], fill=tuple(int(c) for c in base))
            hidden = np.all(np.abs(joints - joints[j]) <= half, axis=1)
            visibility[hidden] = 1
        pad = r
        x1, y1 = joints.min(axis=0) - pad
        x2, y2 = joints.max(axis=0) + pad
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
        outside = (joints[:, 0] < 0) | (joints[:, 0] > w - 1) | (joints[:, 1] < 0) | (joints[:, 1] > h - 1)
        visibility[outside] = 0
        labelled = np.concatenate([joints, visibility[:, None]], axis=1)
        labelled[outside, :2] = 0  # COCO: unlabelled joints are (0, 0, 0)
        people.append((labelled, [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]))
    return image, people


class SyntheticPoseDataModule(CocoKeypointsDataModule):
    """:class:`CocoKeypointsDataModule` over a synthetic stick-figure dataset generated on first use.

    Args:
        root: where the dataset lives (generated by ``prepare_data`` when its annotation files are missing).
        num_train_images: images in the train split.
        num_val_images: images in the val split.
        image_size: (H, W) of the generated images.
        seed: generator seed (the data depends only on it).
        **kwargs: :class:`CocoKeypointsDataModule` options (``input_size``, ``batch_size``, augmentation...).
    """

    def __init__(
        self,
        root: str = "data/synthetic_pose",
        *,
        num_train_images: int = 64,
        num_val_images: int = 16,
        image_size: tuple[int, int] = (160, 160),
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        base = Path(root)
        super().__init__(
            train_annotations=str(base / "annotations" / "person_keypoints_train.json"),
            train_images=str(base / "images" / "train"),
            val_annotations=str(base / "annotations" / "person_keypoints_val.json"),
            val_images=str(base / "images" / "val"),
            **kwargs,
        )
        self.root = base
        self.splits = (("train", num_train_images), ("val", num_val_images))
        self.image_size = tuple(image_size)
        self.seed = seed

    def prepare_data(self) -> None:
        """Generate the dataset unless ``root`` already holds one made with the same settings."""
        if not all(self._is_current(split, count) for split, count in self.splits):
            generate_synthetic_pose(self.root, splits=self.splits, image_size=self.image_size, seed=self.seed)

    def _is_current(self, split: str, count: int) -> bool:
        path = self.root / "annotations" / f"person_keypoints_{split}.json"
        try:
            info = json.loads(path.read_text()).get("info", {})
        except (OSError, ValueError):
            return False
        return info.get("nlzoo_synthetic") == _settings(self.seed, count, self.image_size)
