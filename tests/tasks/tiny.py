"""Tiny synthetic-video settings shared by the task, resume and DDP tests (c2d_r18 at 32 px, 4 frames)."""

from __future__ import annotations

from typing import Any

from nlzoo.data import SyntheticVideoDataModule

TINY_DATA_CONFIG: dict[str, Any] = {
    "num_frames": 4,
    "sampling_rate": 2,
    "crop_size": [32, 32],
    "train_scale": [32, 36],
    "test_scale": 32,
    "test_clips": 2,
    "test_crops": 3,
}
TINY_SPEC: dict[str, Any] = {"num_train": 8, "num_val": 4, "num_test": 5, "video_frames": 8}


def tiny_data(root: str, **overrides: Any) -> SyntheticVideoDataModule:
    args: dict[str, Any] = {
        **TINY_SPEC,
        "data_config": TINY_DATA_CONFIG,
        "batch_size": 4,
        "eval_batch_size": 2,
        "num_workers": 0,
        **overrides,
    }
    return SyntheticVideoDataModule(root, **args)


def trainer_args(**overrides: Any) -> dict[str, Any]:
    """Quiet single-process CPU trainer settings."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        **overrides,
    }
