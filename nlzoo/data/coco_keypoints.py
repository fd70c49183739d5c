"""COCO keypoints for top-down pose: person crops with their target heatmaps, as a LightningDataModule.

Each sample is one person: the box is widened to the input's aspect ratio and padded by 25%, warped to the
input size (training adds SimpleBaseline's random scale, rotation and flip with the left/right joint swap),
and its joints become Gaussian heatmaps with per-joint weights. Evaluation crops come from the ground-truth
boxes or from a person detector's boxes (the standard COCO protocol), and carry what is needed to map the
predictions back to the image (``crop_to_image``) and to score them (``image_id``, ``score``, ``area``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..errors import BrokenDatasetError, ConfigError, ImageDecodeError, LimitError
from ..models.pose_codec import HeatmapCodec
from ..models.skeleton import Skeleton
from ..zoo.config import IMAGENET_MEAN, IMAGENET_STD
from .coco_persons import PersonInstance, read_coco_persons
from .image_dataset import read_image
from .pose_geometry import BOX_PADDING, box_to_window, crop_matrix, crop_tensor, invert_affine, transform_points

log = logging.getLogger("nlzoo")

_MAX_BAD_IMAGES_IN_A_ROW = 16


class TopDownPoseDataset(Dataset):
    """Person crops, target heatmaps and the metadata to map predictions back.

    Args:
        instances: the persons (:func:`~nlzoo.data.coco_persons.read_coco_persons`).
        skeleton: joint layout (its ``flip_index`` drives the joint swap).
        codec: heatmap encoder (input and heatmap sizes, sigma).
        train: apply the random augmentation.
        scale_factor: training window scale ~ clip(N(1, sf), 1 - sf, 1 + sf).
        rotation_factor: training rotation ~ clip(N(0, rf), -2 rf, 2 rf) degrees, applied with ``rotation_prob``.
        rotation_prob: probability of a rotation.
        flip_prob: probability of a horizontal flip.
        box_padding: the window is the aspect-corrected box times this.
        mean: per-channel mean of [0, 1] pixels.
        std: per-channel std.
    """

    def __init__(
        self,
        instances: Sequence[PersonInstance],
        skeleton: Skeleton,
        codec: HeatmapCodec,
        *,
        train: bool = False,
        scale_factor: float = 0.3,
        rotation_factor: float = 40.0,
        rotation_prob: float = 0.6,
        flip_prob: float = 0.5,
        box_padding: float = BOX_PADDING,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.instances = list(instances)
        self.skeleton = skeleton
        self.codec = codec
        self.train = train
        self.scale_factor, self.rotation_factor = scale_factor, rotation_factor
        self.rotation_prob, self.flip_prob = rotation_prob, flip_prob
        self.box_padding = box_padding
        self.mean, self.std = tuple(mean), tuple(std)
        self.unreadable: set[str] = set()

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # An unreadable image is reported and replaced by the next sample, never a crash mid-epoch.
        for attempt in range(_MAX_BAD_IMAGES_IN_A_ROW):
            i = (index + attempt) % len(self.instances)
            instance = self.instances[i]
            try:
                image = read_image(instance.image_path)  # bounded: a decompression bomb is skipped, not decoded
            except (ImageDecodeError, LimitError) as err:
                if instance.image_path not in self.unreadable:
                    self.unreadable.add(instance.image_path)
                    log.warning("skipping unreadable image %s: %s", instance.image_path, err)
                continue
            return self._sample(i, instance, image)
        raise BrokenDatasetError(
            f"{_MAX_BAD_IMAGES_IN_A_ROW} images in a row could not be read (last: {instance.image_path}); "
            "check the image folder"
        )

    def _augmentation(self) -> tuple[float, float, bool]:
        if not self.train:
            return 1.0, 0.0, False
        sf, rf = self.scale_factor, self.rotation_factor
        scale = float(torch.clamp(torch.randn(()) * sf + 1, 1 - sf, 1 + sf))
        rotate = float(torch.rand(())) < self.rotation_prob
        rotation = float(torch.clamp(torch.randn(()) * rf, -2 * rf, 2 * rf)) if rotate else 0.0
        return scale, rotation, float(torch.rand(())) < self.flip_prob

    def _sample(self, index: int, instance: PersonInstance, image: Image.Image) -> dict[str, torch.Tensor]:
        in_h, in_w = self.codec.input_size
        centre, window = box_to_window(instance.box, aspect_ratio=in_w / in_h, padding=self.box_padding)
        scale, rotation, flip = self._augmentation()
        matrix = crop_matrix(centre, window * scale, (in_h, in_w), rotation=rotation, flip=flip)
        pixels = crop_tensor(image, matrix, (in_h, in_w), mean=self.mean, std=self.std)
        k = self.skeleton.num_joints
        if instance.joints is None:
            joints, visibility = np.zeros((k, 2)), np.zeros(k)
        else:
            joints = transform_points(instance.joints[:, :2].astype(np.float64), matrix)
            visibility = instance.joints[:, 2]
            if flip:
                swap = list(self.skeleton.flip_index)
                joints, visibility = joints[swap], visibility[swap]
        target, weight = self.codec.encode(torch.from_numpy(joints).float(), torch.from_numpy(visibility).float())
        return {
            "image": pixels,
            "target": target,
            "target_weight": weight,
            "crop_to_image": torch.from_numpy(invert_affine(matrix)).float(),
            "image_id": torch.tensor(instance.image_id, dtype=torch.int64),
            "score": torch.tensor(instance.score, dtype=torch.float32),
            "area": torch.tensor(float(np.prod(window * scale)), dtype=torch.float32),
            "index": torch.tensor(index, dtype=torch.int64),
        }


class CocoKeypointsDataModule(pl.LightningDataModule):
    """Top-down person crops from COCO person_keypoints files (COCO 2017, or anything in its format).

    Validation and test use the val files: ground-truth boxes, or ``val_detections`` boxes when given
    (SimpleBaseline evaluates with a detector's boxes, ``COCO_val2017_detections_AP_H_56_person.json``).

    Args:
        train_annotations: ``person_keypoints_train2017.json``.
        train_images: its image folder (``train2017/``).
        val_annotations: ``person_keypoints_val2017.json`` (also the ground truth of the OKS metric).
        val_images: its image folder (``val2017/``).
        val_detections: optional COCO results JSON of person boxes to evaluate on instead of the GT boxes.
        min_detection_score: detections below this score are left out.
        num_joints: joints K; the files' skeleton must have as many.
        input_size: (H, W) of the crops (SimpleBaseline: 256 x 192).
        heatmap_size: (h, w) of the targets; default input / 4 (the SimpleBaseline head's stride).
        sigma: Gaussian sigma in heatmap pixels.
        scale_factor: random window scale in [1 - sf, 1 + sf] (training).
        rotation_factor: random rotation std in degrees (training), clipped at 2x.
        rotation_prob: probability of rotating a training crop.
        flip_prob: probability of a horizontal flip (with the left/right joint swap).
        box_padding: the crop window is the aspect-corrected box times this.
        mean: per-channel mean (the model's data config).
        std: per-channel std.
        batch_size: crops per batch and device.
        num_workers: data-loading processes.
    """

    def __init__(
        self,
        train_annotations: str | None = None,
        *,
        train_images: str | None = None,
        val_annotations: str | None = None,
        val_images: str | None = None,
        val_detections: str | None = None,
        min_detection_score: float = 0.0,
        num_joints: int = 17,
        input_size: tuple[int, int] = (256, 192),
        heatmap_size: tuple[int, int] | None = None,
        sigma: float = 2.0,
        scale_factor: float = 0.3,
        rotation_factor: float = 40.0,
        rotation_prob: float = 0.6,
        flip_prob: float = 0.5,
        box_padding: float = BOX_PADDING,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        batch_size: int = 32,
        num_workers: int = 4,
    ) -> None:
        super().__init__()
        if (train_annotations is None) != (train_images is None):
            raise ConfigError("give train_annotations and train_images together")
        if (val_annotations is None) != (val_images is None):
            raise ConfigError("give val_annotations and val_images together")
        if val_detections is not None and val_annotations is None:
            raise ConfigError("val_detections needs val_annotations (the ground truth they are scored against)")
        hm = heatmap_size or (input_size[0] // 4, input_size[1] // 4)
        self.train_files = (train_annotations, train_images)
        self.val_files = (val_annotations, val_images)
        self.val_detections = val_detections
        self.min_detection_score = min_detection_score
        self.num_joints = num_joints
        self.codec = HeatmapCodec(input_size, hm, sigma=sigma)
        self.augmentation = {
            "scale_factor": scale_factor,
            "rotation_factor": rotation_factor,
            "rotation_prob": rotation_prob,
            "flip_prob": flip_prob,
        }
        self.crop_args = {"box_padding": box_padding, "mean": mean, "std": std}
        self.batch_size, self.num_workers = batch_size, num_workers
        self.skeleton: Skeleton | None = None
        self.datasets: dict[str, TopDownPoseDataset] = {}

    @property
    def data_config(self) -> dict[str, Any]:
        """How this module prepares crops, in :class:`~nlzoo.zoo.DataConfig` fields (recorded with a trained model)."""
        mean, std = self.crop_args["mean"], self.crop_args["std"]
        return {"crop_size": self.codec.input_size, "mean": tuple(mean), "std": tuple(std)}

    @property
    def val_annotations(self) -> str | None:
        """The ground-truth file of validation and test (what the OKS metric scores against)."""
        return self.val_files[0]

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.datasets["train"] = self._dataset("train", *self.train_files, None, train=True)
        if stage in ("fit", "validate", "test", "predict") and "val" not in self.datasets:
            self.datasets["val"] = self._dataset("val", *self.val_files, self.val_detections, train=False)

    def _dataset(
        self, split: str, annotations: str | None, images: str | None, detections: str | None, *, train: bool
    ) -> TopDownPoseDataset:
        if annotations is None or images is None:
            raise ConfigError(f"no {split} data: set {split}_annotations and {split}_images")
        instances, skeleton = read_coco_persons(
            annotations,
            images,
            num_joints=self.num_joints,
            detections=detections,
            min_detection_score=self.min_detection_score,
        )
        if not instances:
            raise ConfigError(f"{annotations} gave no usable person instances (see the warnings above)")
        self.skeleton = skeleton
        return TopDownPoseDataset(
            instances, skeleton, self.codec, train=train, **(self.augmentation if train else {}), **self.crop_args
        )

    def _loader(self, split: str, *, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"the {split} set is not set up; call setup() with the right stage first")
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(self.datasets[split]) >= self.batch_size,
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
