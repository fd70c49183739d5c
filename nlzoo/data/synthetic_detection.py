"""A small COCO-format detection dataset: shapes with masks and stick-figure people with keypoints.

It writes what COCO has, ``images/<split>/*.png``, ``annotations/instances_<split>.json`` (boxes, masks,
categories circle / square / triangle / person) and ``annotations/person_keypoints_<split>.json`` (the
people alone, with 17 COCO joints), so tests, the CPU recipe and ``nlzoo predict-image`` run the same
reading, training and COCO evaluation code as real data. Shapes are stored as polygons and people as
compressed RLE masks, the two forms COCO uses. Objects sit in separate cells of a grid (their masks never
overlap); some cells and some whole images are empty; some joints are unlabelled (``v = 0``); some images
are saved as greyscale or RGBA PNGs. Everything depends only on the spec (seed included).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..models.skeleton import COCO_PERSON, Skeleton
from .coco_detection import CocoDetectionDataModule, Targets
from .synthetic_common import SplitSpec, ensure_dataset, write_dataset
from .synthetic_pose import _HEAD_RADIUS, _figure

SHAPES = ("circle", "square", "triangle")
CATEGORIES = (*SHAPES, "person")  # category ids 1..4
PERSON_ID = len(CATEGORIES)
LABEL_NAMES = ("__background__", *CATEGORIES)


@dataclass(frozen=True)
class SyntheticDetectionSpec(SplitSpec):
    """What to generate (recorded in ``meta.json``, so another spec is never silently reused).

    Args:
        num_train: training images.
        num_val: validation images.
        num_test: test images.
        size: (H, W) of every image.
        grid: objects lie in a ``grid`` x ``grid`` layout of cells, at most one per cell.
        empty_cell_prob: probability that a cell holds no object.
        person_prob: probability that an object is a stick figure rather than a shape.
        empty_image_every: every n-th image has no objects at all (0: none forced).
        seed: everything is a function of this seed.
    """

    num_train: int = 64
    num_val: int = 16
    num_test: int = 0
    size: tuple[int, int] = (128, 128)
    grid: int = 2
    empty_cell_prob: float = 0.25
    person_prob: float = 0.35
    empty_image_every: int = 10
    seed: int = 0


def write_synthetic_detection(root: str | os.PathLike[str], spec: SyntheticDetectionSpec) -> Path:
    """Write the dataset under ``root`` (atomically; ``root`` must not exist) and return it."""

    def fill(tmp: Path) -> None:
        for split_index, split in enumerate(("train", "val", "test")):
            if spec.count(split):
                _write_split(tmp, split, split_index, spec)

    return write_dataset(root, spec, fill, label_names=LABEL_NAMES[1:])


def ensure_synthetic_detection(root: str | os.PathLike[str], spec: SyntheticDetectionSpec) -> Path:
    """``root`` holding exactly ``spec``'s dataset, generated if missing (an error if it holds another)."""
    return ensure_dataset(root, spec, write_synthetic_detection)


def _write_split(root: Path, split: str, split_index: int, spec: SyntheticDetectionSpec) -> None:
    image_dir = root / "images" / split
    image_dir.mkdir(parents=True)
    images, annotations = [], []
    h, w = spec.size
    for i in range(spec.count(split)):
        rng = np.random.default_rng([spec.seed, split_index, i])
        empty = spec.empty_image_every > 0 and i % spec.empty_image_every == spec.empty_image_every - 1
        image, objects = _draw_image(rng, spec, empty=empty)
        file_name = f"{i + 1:06d}.png"
        mode = "L" if i % 7 == 5 else "RGBA" if i % 5 == 3 else "RGB"  # real files come in these modes too
        image.convert(mode).save(image_dir / file_name)
        images.append({"id": i + 1, "file_name": file_name, "height": h, "width": w})
        for obj in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "iscrowd": 0, **obj})
    categories = [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(SHAPES)]
    person = {
        "id": PERSON_ID,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_PERSON.names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_PERSON.edges],
    }
    info = {"description": "nlzoo synthetic shapes and stick figures", "nlzoo_synthetic": spec.to_dict()}
    out = root / "annotations"
    out.mkdir(exist_ok=True)
    instances = {"info": info, "images": images, "annotations": annotations, "categories": [*categories, person]}
    (out / f"instances_{split}.json").write_text(json.dumps(instances))
    people = [a for a in annotations if a["category_id"] == PERSON_ID]
    keypoints = {"info": info, "images": images, "annotations": people, "categories": [person]}
    (out / f"person_keypoints_{split}.json").write_text(json.dumps(keypoints))


def _draw_image(
    rng: np.random.Generator, spec: SyntheticDetectionSpec, *, empty: bool
) -> tuple[Image.Image, list[dict[str, Any]]]:
    h, w = spec.size
    base = rng.uniform(40, 200, size=3)
    noise = rng.normal(0, 6, size=(h, w, 3))
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    cell_h, cell_w = h / spec.grid, w / spec.grid
    objects = []
    for row in range(spec.grid):
        for col in range(spec.grid):
            if empty or rng.random() < spec.empty_cell_prob:
                continue
            contrast = np.where(base > 120, -1.0, 1.0) * rng.uniform(70, 110, size=3)
            colour = tuple(int(c) for c in (base + contrast).clip(0, 255))
            cell = (col * cell_w, row * cell_h, cell_w, cell_h)
            mask = Image.new("L", (w, h), 0)
            make = _person if rng.random() < spec.person_prob else _shape
            obj = make(rng, cell, colour, draw, mask)
            pixels = np.asarray(mask) > 0
            ys, xs = np.nonzero(pixels)
            x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
            objects.append({**obj, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(pixels.sum())})
    return image, objects


def _shape(
    rng: np.random.Generator,
    cell: tuple[float, ...],
    colour: tuple[int, ...],
    draw: ImageDraw.ImageDraw,
    mask: Image.Image,
) -> dict[str, Any]:
    """A circle, square or triangle inside ``cell``, drawn as the polygon stored for its mask."""
    x0, y0, cw, ch = cell
    kind = int(rng.integers(len(SHAPES)))
    radius = rng.uniform(0.25, 0.42) * min(cw, ch)
    cx = x0 + rng.uniform(radius + 1, cw - radius - 1)
    cy = y0 + rng.uniform(radius + 1, ch - radius - 1)
    corners = {0: 20, 1: 4, 2: 3}[kind]
    turn = rng.uniform(0, 2 * math.pi / corners)
    polygon = [
        (round(cx + radius * math.cos(turn + 2 * math.pi * k / corners), 2),
         round(cy + radius * math.sin(turn + 2 * math.pi * k / corners), 2))
        for k in range(corners)
    ]  # fmt: skip
    for canvas, fill in ((draw, colour), (ImageDraw.Draw(mask), 255)):
        canvas.polygon(polygon, fill=fill)
    return {"category_id": kind + 1, "segmentation": [[v for point in polygon for v in point]]}


def _person(
    rng: np.random.Generator,
    cell: tuple[float, ...],
    colour: tuple[int, ...],
    draw: ImageDraw.ImageDraw,
    mask: Image.Image,
) -> dict[str, Any]:
    """A stick figure (synthetic_pose's poses) inside ``cell``: RLE mask of its strokes, 17 keypoints."""
    from pycocotools import mask as mask_utils

    x0, y0, cw, ch = cell
    height = rng.uniform(0.7, 0.9) * ch
    joints = _figure(rng) * height
    lo, hi = joints.min(axis=0), joints.max(axis=0)
    joints += (x0 + (cw - (hi[0] - lo[0])) / 2 - lo[0], y0 + (ch - (hi[1] - lo[1])) / 2 - lo[1])
    width = max(2, int(height / 16))
    r = _HEAD_RADIUS * height * 1.3
    cx, cy = joints[:5].mean(axis=0)
    for canvas, fill in ((draw, colour), (ImageDraw.Draw(mask), 255)):
        for a, b in COCO_PERSON.edges:
            if a >= 5 or b >= 5:  # limbs; the face is the head disc
                canvas.line([tuple(joints[a]), tuple(joints[b])], fill=fill, width=width)
        canvas.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask) > 0, dtype=np.uint8))
    keypoints = np.concatenate([joints, np.full((17, 1), 2.0)], axis=1)
    if rng.random() < 0.3:  # an unlabelled joint: COCO writes (0, 0, 0)
        keypoints[int(rng.integers(17))] = 0
    return {
        "category_id": PERSON_ID,
        "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
        "keypoints": [round(float(v), 2) for v in keypoints.reshape(-1)],
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
    }


class SyntheticDetectionDataModule(CocoDetectionDataModule):
    """:class:`CocoDetectionDataModule` over the synthetic shapes-and-people dataset, generated on first use.

    Args:
        root: where the dataset lives (generated there by ``prepare_data`` if missing).
        num_train_images: images in the train split.
        num_val_images: images in the val split.
        image_size: (H, W) of the generated images.
        data_seed: generator seed (separate from the training seed).
        targets: ``"masks"`` / ``"boxes"`` (the instances files, 5 classes with background) or
            ``"keypoints"`` (the person_keypoints files, 2 classes).
        **kwargs: :class:`CocoDetectionDataModule` options (``batch_size``, ``flip_prob``, ...).
    """

    def __init__(
        self,
        root: str = "outputs/data/synthetic_detection",
        *,
        num_train_images: int = 64,
        num_val_images: int = 16,
        image_size: tuple[int, int] = (128, 128),
        data_seed: int = 0,
        targets: Targets = "masks",
        **kwargs: Any,
    ) -> None:
        base = Path(root)
        prefix = "person_keypoints" if targets == "keypoints" else "instances"
        super().__init__(
            train_annotations=str(base / "annotations" / f"{prefix}_train.json"),
            train_images=str(base / "images" / "train"),
            val_annotations=str(base / "annotations" / f"{prefix}_val.json"),
            val_images=str(base / "images" / "val"),
            targets=targets,
            **kwargs,
        )
        self.root = base
        self.spec = SyntheticDetectionSpec(
            num_train=num_train_images,
            num_val=num_val_images,
            size=tuple(image_size),  # type: ignore[arg-type]
            seed=data_seed,
        )

    def prepare_data(self) -> None:
        ensure_synthetic_detection(self.root, self.spec)

    def _categories(self) -> tuple[tuple[str, ...], Skeleton | None]:
        """Known without the files (the CLI asks for ``num_classes`` before ``prepare_data`` runs)."""
        if self.targets == "keypoints":
            return ("__background__", "person"), COCO_PERSON
        return LABEL_NAMES, None
