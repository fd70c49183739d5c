"""COCO detection, instance masks and person keypoints for torchvision's R-CNNs, as a LightningDataModule.

Samples are what torchvision's detectors take: a (3, H, W) float image in [0, 1] at its own size (the model
resizes: short side ``min_size``, long side at most ``max_size``, several ``min_size`` for multi-scale
training) and a target dict with ``boxes`` (N, 4) x1 y1 x2 y2, ``labels`` (N,), and ``masks`` (N, H, W)
uint8 or ``keypoints`` (N, K, 3). Masks come from polygons or RLE through pycocotools. Training flips
horizontally, swapping left/right keypoints.

Labels are COCO category ids (torchvision's convention: 91 classes for COCO, 0 = background); for keypoints
the person category is label 1 (``num_classes`` 2). What does not fit is dropped and counted, never
trained on: boxes that are empty or outside the image after clipping, annotations of unknown categories or
images, crowd regions (kept, flagged, in evaluation targets), and unreadable images (skipped at load).
Images without objects are kept as torchvision expects (empty targets) in evaluation; in training they are
left out by default, as torchvision's reference scripts do.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..errors import BrokenDatasetError
from ..models.skeleton import Skeleton
from .coco_keypoints import _MAX_BAD_IMAGES_IN_A_ROW
from .coco_persons import SkipCounter, load_coco_json, person_category
from .image_dataset import as_rgb

log = logging.getLogger("nlzoo")

Targets = Literal["boxes", "masks", "keypoints"]
MIN_BOX_SIDE = 1.0  # pixels; thinner boxes are degenerate for torchvision's box coder


@dataclass(frozen=True)
class CocoImage:
    """One image and its kept annotations (COCO dicts with ``bbox`` replaced by a clipped x1 y1 x2 y2)."""

    path: str
    image_id: int
    width: int
    height: int
    annotations: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class CocoDetectionSet:
    """What :func:`read_coco_detection` found: images, class names by label, the skeleton for keypoints."""

    images: list[CocoImage]
    label_names: list[str]
    skeleton: Skeleton | None
    source: str


def read_coco_detection(
    annotations: str | os.PathLike[str], image_dir: str | os.PathLike[str], *, targets: Targets = "masks"
) -> CocoDetectionSet:
    """Images and checked annotations of a COCO ``instances_*.json`` or ``person_keypoints_*.json``.

    Args:
        annotations: the JSON file.
        image_dir: the folder its ``file_name`` s are relative to.
        targets: ``"boxes"``, ``"masks"`` (annotations need a ``segmentation``) or ``"keypoints"`` (only the
            category with keypoint names, as label 1).

    Raises:
        FileNotFoundError: the file or the image folder does not exist.
        ValueError: not a COCO file, or no keypoint category when ``targets="keypoints"``.
    """
    data = load_coco_json(annotations)
    source = str(annotations)
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder {image_dir} (for {source}) does not exist")
    skipped = SkipCounter(source, defaultdict(list))
    skeleton = None
    if targets == "keypoints":
        category = person_category(data, source)
        skeleton = Skeleton.from_coco_category(category)
        labels = {category["id"]: 1}
        label_names = ["__background__", str(category.get("name", "person"))]
    else:
        labels, label_names = _category_labels(data["categories"], source)
    per_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    sizes = {image.get("id"): (image.get("width"), image.get("height")) for image in data["images"]}
    for ann in data["annotations"]:
        kept = _check_annotation(ann, sizes, labels, targets, skeleton, skipped)
        if kept is not None:
            per_image[ann["image_id"]].append(kept)
    present = set(os.listdir(image_dir))
    images = []
    for image in data["images"]:
        name = str(image.get("file_name", ""))
        if name not in present and not (image_dir / name).is_file():
            skipped.add("images whose file is missing", image.get("id"))
            continue
        images.append(
            CocoImage(
                str(image_dir / name),
                int(image["id"]),
                int(image["width"]),
                int(image["height"]),
                tuple(per_image.get(image["id"], ())),
            )
        )
    skipped.report()
    return CocoDetectionSet(images, label_names, skeleton, source)


def _category_labels(categories: Sequence[dict[str, Any]], source: str) -> tuple[dict[int, int], list[str]]:
    """Category id -> label (the id itself) and names by label, ``N/A`` in the gaps (torchvision's COCO list)."""
    ids = [c.get("id") for c in categories]
    if not categories or not all(isinstance(i, int) and i >= 1 for i in ids):
        raise ValueError(f"{source}: category ids must be integers >= 1 (0 is the background); got {ids[:10]}")
    names = ["__background__"] + ["N/A"] * max(ids)
    for category in categories:
        names[category["id"]] = str(category.get("name", category["id"]))
    return {i: i for i in ids}, names


def _check_annotation(
    ann: dict[str, Any],
    sizes: dict[Any, tuple[Any, Any]],
    labels: dict[int, int],
    targets: Targets,
    skeleton: Skeleton | None,
    skipped: SkipCounter,
) -> dict[str, Any] | None:
    """The annotation with a clipped ``box`` and its ``label``, or None (counted by reason)."""
    if ann.get("image_id") not in sizes:
        skipped.add("annotations of unknown images", ann.get("id"))
        return None
    if ann.get("category_id") not in labels:
        if targets != "keypoints":  # a keypoints file's other categories are simply not ours
            skipped.add("annotations of categories not in 'categories'", ann.get("id"))
        return None
    width, height = sizes[ann["image_id"]]
    box = _clip_xyxy(ann.get("bbox"), width, height)
    if box is None:
        skipped.add("annotations whose box is empty or outside the image", ann.get("id"))
        return None
    if targets == "masks" and not ann.get("segmentation"):
        skipped.add("annotations without a segmentation", ann.get("id"))
        return None
    if targets == "keypoints" and skeleton is not None:
        points = ann.get("keypoints")
        if not isinstance(points, list) or len(points) != 3 * skeleton.num_joints:
            skipped.add(f"annotations with a keypoint list not of length {3 * skeleton.num_joints}", ann.get("id"))
            return None
    return {**ann, "box": box, "label": labels[ann["category_id"]]}


def _clip_xyxy(box: Any, width: Any, height: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(box, list | tuple) or len(box) != 4 or not all(isinstance(v, int | float) for v in box):
        return None
    x, y, w, h = (float(v) for v in box)
    x1, y1 = min(max(0.0, x), float(width)), min(max(0.0, y), float(height))
    x2, y2 = min(max(0.0, x + w), float(width)), min(max(0.0, y + h), float(height))
    if not np.isfinite([x1, y1, x2, y2]).all() or x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
        return None
    return (x1, y1, x2, y2)


class CocoDetectionDataset(Dataset):
    """``(image, target)`` pairs for torchvision's detectors.

    Args:
        images: from :func:`read_coco_detection`.
        targets: ``"boxes"``, ``"masks"`` or ``"keypoints"``.
        skeleton: the keypoint layout (its ``flip_index`` swaps left and right on a flip).
        train: drop crowd regions (they are no training targets) and flip at random.
        flip_prob: probability of a horizontal flip in training.
    """

    def __init__(
        self,
        images: Sequence[CocoImage],
        *,
        targets: Targets = "masks",
        skeleton: Skeleton | None = None,
        train: bool = False,
        flip_prob: float = 0.5,
    ) -> None:
        if targets == "keypoints" and skeleton is None:
            raise ValueError("keypoint targets need the skeleton (for the left/right swap of a flip)")
        self.images = list(images)
        self.targets, self.skeleton = targets, skeleton
        self.train, self.flip_prob = train, flip_prob
        self.unreadable: set[str] = set()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # An unreadable image is counted and replaced by the next one, never a crash mid-epoch.
        for attempt in range(_MAX_BAD_IMAGES_IN_A_ROW):
            i = (index + attempt) % len(self.images)
            item = self.images[i]
            try:
                with Image.open(item.path) as raw:
                    pixels = np.asarray(as_rgb(raw))  # grey, palette, RGBA, 16-bit: all become 8-bit RGB
                if pixels.shape[:2] != (item.height, item.width):
                    raise ValueError(
                        f"it is {pixels.shape[1]}x{pixels.shape[0]} but the annotation file says "
                        f"{item.width}x{item.height} (image id {item.image_id})"
                    )
            except (OSError, ValueError) as err:
                if item.path not in self.unreadable:
                    self.unreadable.add(item.path)
                    log.warning("skipping image %s: %s (%d skipped so far)", item.path, err, len(self.unreadable))
                continue
            return self._sample(i, item, pixels)
        raise BrokenDatasetError(
            f"{_MAX_BAD_IMAGES_IN_A_ROW} images in a row could not be read (last: {item.path}); check the image folder"
        )

    def _sample(self, index: int, item: CocoImage, pixels: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        height, width = pixels.shape[:2]
        anns = [a for a in item.annotations if not (self.train and a.get("iscrowd", 0))]
        image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)
        target: dict[str, torch.Tensor] = {
            "boxes": torch.tensor([a["box"] for a in anns], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([a["label"] for a in anns], dtype=torch.int64),
            "image_id": torch.tensor(item.image_id, dtype=torch.int64),
            "area": torch.tensor([float(a.get("area") or _box_area(a["box"])) for a in anns], dtype=torch.float32),
            "iscrowd": torch.tensor([int(bool(a.get("iscrowd", 0))) for a in anns], dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }
        if self.targets == "masks":
            target["masks"] = _masks(anns, height, width)
        if self.targets == "keypoints":
            k = self.skeleton.num_joints  # type: ignore[union-attr]
            target["keypoints"] = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float32).reshape(-1, k, 3)
        if self.train and float(torch.rand(())) < self.flip_prob:
            image, target = self._flip(image, target, width)
        return image, target

    def _flip(
        self, image: torch.Tensor, target: dict[str, torch.Tensor], width: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = dict(target)
        boxes = target["boxes"].clone()
        boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
        target["boxes"] = boxes
        if "masks" in target:
            target["masks"] = target["masks"].flip(-1)
        if "keypoints" in target:
            points = target["keypoints"][:, list(self.skeleton.flip_index)].clone()  # type: ignore[union-attr]
            points[..., 0] = width - points[..., 0]
            points[points[..., 2] == 0] = 0  # unlabelled joints stay (0, 0, 0), as COCO writes them
            target["keypoints"] = points
        return image.flip(-1), target


def _box_area(box: Sequence[float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _masks(anns: Sequence[dict[str, Any]], height: int, width: int) -> torch.Tensor:
    """(N, H, W) uint8 masks from polygons, uncompressed or compressed RLE (pycocotools)."""
    from pycocotools import mask as mask_utils

    masks = np.zeros((len(anns), height, width), dtype=np.uint8)
    for i, ann in enumerate(anns):
        segmentation = ann["segmentation"]
        if isinstance(segmentation, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation.get("counts"), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        masks[i] = mask_utils.decode(rle)
    return torch.from_numpy(masks)


def collate_detection(batch: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list, list]:
    """Lists of images and targets (torchvision's detectors take images of different sizes)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


class CocoDetectionDataModule(pl.LightningDataModule):
    """COCO-format detection data (``instances_*.json`` / ``person_keypoints_*.json``) for the R-CNN task.

    Args:
        train_annotations: training JSON (``instances_train2017.json``; ``person_keypoints_train2017.json``
            for keypoints).
        train_images: its image folder.
        val_annotations: validation JSON (also the keypoint metric's ground truth).
        val_images: its image folder.
        targets: ``"masks"`` (Mask R-CNN), ``"boxes"`` (Faster R-CNN) or ``"keypoints"`` (Keypoint R-CNN).
        flip_prob: horizontal flip probability in training.
        skip_empty_train_images: leave images without objects out of training (torchvision's reference
            scripts do); evaluation always keeps them.
        batch_size: images per batch and device (the paper: 2 per GPU, 16 in total).
        num_workers: data-loading processes.
    """

    def __init__(
        self,
        train_annotations: str | None = None,
        *,
        train_images: str | None = None,
        val_annotations: str | None = None,
        val_images: str | None = None,
        targets: Targets = "masks",
        flip_prob: float = 0.5,
        skip_empty_train_images: bool = True,
        batch_size: int = 2,
        num_workers: int = 4,
    ) -> None:
        super().__init__()
        if (train_annotations is None) != (train_images is None):
            raise ValueError("give train_annotations and train_images together")
        if (val_annotations is None) != (val_images is None):
            raise ValueError("give val_annotations and val_images together")
        if targets not in ("boxes", "masks", "keypoints"):
            raise ValueError(f"targets must be 'boxes', 'masks' or 'keypoints'; got {targets!r}")
        self.train_files = (train_annotations, train_images)
        self.val_files = (val_annotations, val_images)
        self.targets = targets
        self.flip_prob = flip_prob
        self.skip_empty_train_images = skip_empty_train_images
        self.batch_size, self.num_workers = batch_size, num_workers
        self.datasets: dict[str, CocoDetectionDataset] = {}
        self._category_cache: tuple[tuple[str, ...], Skeleton | None] | None = None

    @property
    def val_annotations(self) -> str | None:
        """The ground truth of validation and test (what the keypoint metric scores against)."""
        return self.val_files[0]

    @property
    def num_classes(self) -> int:
        """Classes with background, as the detector counts them: max category id + 1 (2 for keypoints)."""
        return len(self.label_names)

    @property
    def label_names(self) -> list[str]:
        """Names by label (``__background__`` first, ``N/A`` for unused ids), read from the annotation file."""
        return list(self._categories()[0])

    @property
    def skeleton(self) -> Skeleton | None:
        """The keypoint layout (keypoint targets only)."""
        return self._categories()[1]

    def _categories(self) -> tuple[tuple[str, ...], Skeleton | None]:
        """Read once (the CLI asks for ``num_classes`` before setup); the files do not change during a run."""
        if self._category_cache is None:
            path = self.val_files[0] or self.train_files[0]
            if path is None:
                raise ValueError("no annotation file: set train_annotations / val_annotations")
            data = load_coco_json(path)
            if self.targets == "keypoints":
                category = person_category(data, str(path))
                names = ("__background__", str(category.get("name", "person")))
                self._category_cache = names, Skeleton.from_coco_category(category)
            else:
                self._category_cache = tuple(_category_labels(data["categories"], str(path))[1]), None
        return self._category_cache

    def setup(self, stage: str) -> None:
        if stage == "fit" and "train" not in self.datasets:
            self.datasets["train"] = self._dataset("train", *self.train_files, train=True)
        if "val" not in self.datasets and (stage != "fit" or self.val_files[0] is not None):
            self.datasets["val"] = self._dataset("val", *self.val_files, train=False)

    def _dataset(self, split: str, annotations: str | None, images: str | None, *, train: bool) -> CocoDetectionDataset:
        if annotations is None or images is None:
            raise ValueError(f"no {split} data: set {split}_annotations and {split}_images")
        found = read_coco_detection(annotations, images, targets=self.targets)
        kept = [i for i in found.images if i.annotations] if train and self.skip_empty_train_images else found.images
        if train and len(kept) < len(found.images):
            log.info("%s: %d images without objects left out of training", annotations, len(found.images) - len(kept))
        if not kept:
            raise ValueError(f"{annotations} gave no usable images (see the warnings above)")
        if found.label_names != self.label_names:
            raise ValueError(
                f"{annotations} has other categories than {self.val_files[0] or self.train_files[0]}; "
                "train and validation files must share their category list"
            )
        return CocoDetectionDataset(
            kept, targets=self.targets, skeleton=found.skeleton, train=train, flip_prob=self.flip_prob
        )

    def _loader(self, split: str, *, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"the {split} set is not set up; call setup() with the right stage first")
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=collate_detection,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
