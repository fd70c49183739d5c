"""Data: video decoding, clip sampling and transforms, datasets, Lightning data modules, synthetic data."""

from .samplers import EpochSampler
from .synthetic import SyntheticVideoSpec, ensure_synthetic_videos, write_synthetic_videos
from .synthetic_datamodule import SyntheticVideoDataModule
from .video_datamodule import VideoDataModule, default_num_workers, model_data_config
from .video_dataset import (
    MultiViewVideoDataset,
    SkippedVideoWarning,
    VideoClipDataset,
    collate_clips,
    collate_views,
)
from .video_io import VideoDecodeError, VideoReader, list_backends, open_video, register_backend
from .video_sources import VideoItem, read_label_names, read_list_file, scan_class_folders

__all__ = [
    "EpochSampler",
    "MultiViewVideoDataset",
    "SkippedVideoWarning",
    "SyntheticVideoDataModule",
    "SyntheticVideoSpec",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoItem",
    "VideoReader",
    "collate_clips",
    "collate_views",
    "default_num_workers",
    "ensure_synthetic_videos",
    "list_backends",
    "model_data_config",
    "open_video",
    "read_label_names",
    "read_list_file",
    "register_backend",
    "scan_class_folders",
    "write_synthetic_videos",
]
