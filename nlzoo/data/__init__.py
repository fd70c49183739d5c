"""Data: video, image folders and COCO keypoints; decoding, transforms, datasets, data modules, synthetic data."""

from .classification_datamodule import ClassificationDataModule, default_num_workers, model_data_config
from .coco_keypoints import CocoKeypointsDataModule, TopDownPoseDataset
from .image_dataset import (
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    ImageFileDataset,
    SkippedImageWarning,
    collate_images,
    read_image,
)
from .image_folder import ImageFolderDataModule
from .image_transforms import eval_image_transform, train_image_transform
from .samplers import EpochSampler
from .synthetic import SyntheticVideoSpec, ensure_synthetic_videos, write_synthetic_videos
from .synthetic_datamodule import SyntheticVideoDataModule
from .synthetic_image_datamodule import SyntheticImageDataModule
from .synthetic_images import SyntheticImageSpec, ensure_synthetic_images, write_synthetic_images
from .synthetic_pose import SyntheticPoseDataModule, generate_synthetic_pose
from .video_datamodule import VideoDataModule
from .video_dataset import (
    MultiViewVideoDataset,
    SkippedVideoWarning,
    VideoClipDataset,
    collate_clips,
    collate_views,
)
from .video_io import VideoDecodeError, VideoReader, list_backends, open_video, read_frames, register_backend
from .video_sources import VideoItem, read_label_names, read_list_file, scan_class_folders

__all__ = [
    "IMAGE_EXTENSIONS",
    "ClassificationDataModule",
    "CocoKeypointsDataModule",
    "EpochSampler",
    "ImageDecodeError",
    "ImageFileDataset",
    "ImageFolderDataModule",
    "MultiViewVideoDataset",
    "SkippedImageWarning",
    "SkippedVideoWarning",
    "SyntheticImageDataModule",
    "SyntheticImageSpec",
    "SyntheticPoseDataModule",
    "SyntheticVideoDataModule",
    "SyntheticVideoSpec",
    "TopDownPoseDataset",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoItem",
    "VideoReader",
    "collate_clips",
    "collate_images",
    "collate_views",
    "default_num_workers",
    "ensure_synthetic_images",
    "ensure_synthetic_videos",
    "eval_image_transform",
    "generate_synthetic_pose",
    "list_backends",
    "model_data_config",
    "open_video",
    "read_frames",
    "read_image",
    "read_label_names",
    "read_list_file",
    "register_backend",
    "scan_class_folders",
    "train_image_transform",
    "write_synthetic_images",
    "write_synthetic_videos",
]
