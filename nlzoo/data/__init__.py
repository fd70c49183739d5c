"""LightningDataModules and datasets: COCO keypoints (top-down pose) and synthetic data generators."""

from .coco_keypoints import CocoKeypointsDataModule, TopDownPoseDataset
from .synthetic_pose import SyntheticPoseDataModule, generate_synthetic_pose

__all__ = ["CocoKeypointsDataModule", "SyntheticPoseDataModule", "TopDownPoseDataset", "generate_synthetic_pose"]
