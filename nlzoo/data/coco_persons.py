"""Read person instances for top-down pose from a COCO person_keypoints JSON (and optionally a detections JSON).

Malformed entries are skipped and counted, and one warning names the file, the reason and the first ids;
a file whose skeleton does not match the model is an error. Ground-truth instances are the non-crowd
annotations with at least one labelled joint (those COCO's evaluation scores); detection instances are
the detector's person boxes above a score threshold (the standard top-down evaluation).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputNotFoundError
from ..models.skeleton import Skeleton

log = logging.getLogger("nlzoo")

_SHOW_IDS = 5


@dataclass(frozen=True)
class PersonInstance:
    """One person to crop: the image, a clipped box ``[x, y, w, h]``, the joints (K, 3) if known, a score."""

    image_path: str
    image_id: int
    box: tuple[float, float, float, float]
    joints: np.ndarray | None  # (K, 3) x, y, visibility; None for detections
    score: float = 1.0


@dataclass
class SkipCounter:
    """Entries left out, by reason, with their ids (reported once per file)."""

    source: str
    ids: dict[str, list[Any]]

    def add(self, reason: str, entry_id: Any) -> None:
        self.ids[reason].append(entry_id)

    def report(self) -> None:
        if not self.ids:
            return
        parts = []
        for reason, ids in self.ids.items():
            more = f", ... ({len(ids) - _SHOW_IDS} more)" if len(ids) > _SHOW_IDS else ""
            parts.append(f"{len(ids)} {reason} (ids {', '.join(map(str, ids[:_SHOW_IDS]))}{more})")
        log.warning("%s: skipped %s", self.source, "; ".join(parts))

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.ids.values())


def load_coco_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A COCO keypoints JSON, checked for the sections top-down pose needs."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"COCO annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ConfigError(f"{path} lacks the COCO sections {missing}; expected a person_keypoints_*.json file")
    return data


def person_category(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The first category with keypoint names (COCO: ``person``, id 1)."""
    for category in data["categories"]:
        if category.get("keypoints"):
            return category
    raise ConfigError(f"{source} has no category with 'keypoints' names; is it a person_keypoints file?")


def read_coco_persons(
    annotations: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    *,
    num_joints: int,
    detections: str | os.PathLike[str] | None = None,
    min_detection_score: float = 0.0,
) -> tuple[list[PersonInstance], Skeleton]:
    """Person instances (ground truth, or detections when given) and the file's skeleton.

    Args:
        annotations: a ``person_keypoints_*.json``.
        image_dir: folder of its images (``file_name`` is relative to it).
        num_joints: joints the model predicts; the file's category must list as many.
        detections: a COCO results JSON of person boxes (``[{image_id, category_id, bbox, score}]``).
        min_detection_score: detections below this score are left out.

    Raises:
        ValueError: the file is not a keypoints file, or its skeleton has another number of joints.
        FileNotFoundError: a file or the image folder does not exist.
    """
    data = load_coco_json(annotations)
    source = str(annotations)
    category = person_category(data, source)
    skeleton = Skeleton.from_coco_category(category)
    if skeleton.num_joints != num_joints:
        raise ConfigError(
            f"{source} annotates {skeleton.num_joints} joints ({', '.join(skeleton.names[:4])}, ...) but the model "
            f"predicts {num_joints}; set num_joints={skeleton.num_joints} (the model's num_classes) or use another file"
        )
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise InputNotFoundError(f"image folder {image_dir} (for {source}) does not exist")
    skipped = SkipCounter(source, defaultdict(list))
    images = _images(data, image_dir, skipped)
    if detections is None:
        instances = _ground_truth(data, images, category["id"], num_joints, skipped)
    else:
        det_skipped = SkipCounter(str(detections), defaultdict(list))
        instances = _detections(detections, images, category["id"], min_detection_score, det_skipped)
        det_skipped.report()
    skipped.report()
    return instances, skeleton


def _images(data: dict[str, Any], image_dir: Path, skipped: SkipCounter) -> dict[int, tuple[str, int, int]]:
    """image id -> (path, width, height) for images whose file exists."""
    present = set(os.listdir(image_dir))
    images = {}
    for image in data["images"]:
        name = image.get("file_name", "")
        if name in present or (image_dir / name).is_file():
            images[image["id"]] = (str(image_dir / name), int(image["width"]), int(image["height"]))
        else:
            skipped.add("missing image files", image.get("id"))
    return images


def _clip_box(box: Any, width: int, height: int) -> tuple[float, float, float, float] | None:
    if not isinstance(box, list | tuple) or len(box) != 4:
        return None
    x, y, w, h = (float(v) for v in box)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(width), x + max(0.0, w)), min(float(height), y + max(0.0, h))
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def _ground_truth(
    data: dict[str, Any], images: dict[int, tuple[str, int, int]], category_id: int, k: int, skipped: SkipCounter
) -> list[PersonInstance]:
    known_images = {image["id"] for image in data["images"]}
    instances = []
    for ann in data["annotations"]:
        if ann.get("category_id") != category_id or ann.get("iscrowd", 0):
            continue
        keypoints = ann.get("keypoints")
        if not isinstance(keypoints, list) or len(keypoints) != 3 * k:
            skipped.add(f"annotations with a keypoint list not of length {3 * k}", ann.get("id"))
            continue
        if ann.get("image_id") not in known_images:
            skipped.add("annotations of unknown images", ann.get("id"))
            continue
        if ann["image_id"] not in images:
            continue  # its image file is missing (counted once, per image)
        path, width, height = images[ann["image_id"]]
        joints = np.asarray(keypoints, dtype=np.float32).reshape(k, 3)
        if not (joints[:, 2] > 0).any():
            continue  # nothing to learn or score (COCO's evaluation ignores these too)
        box = _clip_box(ann.get("bbox"), width, height)
        if box is None:
            skipped.add("annotations whose box is empty or outside the image", ann.get("id"))
            continue
        instances.append(PersonInstance(path, ann["image_id"], box, joints))
    return instances


def _detections(
    path: str | os.PathLike[str],
    images: dict[int, tuple[str, int, int]],
    category_id: int,
    min_score: float,
    skipped: SkipCounter,
) -> list[PersonInstance]:
    if not Path(path).is_file():
        raise InputNotFoundError(f"detections file {path} does not exist")
    try:
        results = json.loads(Path(path).read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(results, list):
        raise ConfigError(f"{path} must be a COCO results list [{{image_id, category_id, bbox, score}}, ...]")
    instances = []
    for index, det in enumerate(results):
        if det.get("category_id", category_id) != category_id or float(det.get("score", 0.0)) < min_score:
            continue
        if det.get("image_id") not in images:
            skipped.add("detections of unknown or missing images", index)
            continue
        image_path, width, height = images[det["image_id"]]
        box = _clip_box(det.get("bbox"), width, height)
        if box is None:
            skipped.add("detections whose box is empty or outside the image", index)
            continue
        instances.append(PersonInstance(image_path, det["image_id"], box, None, float(det["score"])))
    return instances
