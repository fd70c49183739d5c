"""A tiny video model folder and a few synthetic MP4s for the inference commands' tests."""

from __future__ import annotations

from pathlib import Path

import torch

import nlzoo
from nlzoo.data import SyntheticVideoSpec, write_synthetic_videos
from nlzoo.data.synthetic_common import LABEL_NAMES
from nlzoo.layers import nonlocal_blocks
from nlzoo.zoo import DataConfig

# 4 frames every 4th of a 16-frame video, 32 px crops from a 40 px short side: small and fast, and not square
# views, so crops are really chosen.
TINY_DATA = DataConfig(
    crop_size=(32, 32),
    mean=(0.45, 0.45, 0.45),
    std=(0.225, 0.225, 0.225),
    num_frames=4,
    sampling_rate=4,
    train_scale=(40, 40),
    test_scale=40,
    test_clips=2,
    test_crops=3,
)


def write_videos(root: Path, count: int = 2) -> list[Path]:
    """``count`` synthetic "same colour?" videos of 16 frames at 40 x 56."""
    spec = SyntheticVideoSpec(num_train=count, num_val=0, num_test=0, size=(40, 56), object_size=6, margin=4)
    write_synthetic_videos(root, spec)
    return sorted((root / "videos" / "train").glob("*.mp4"))


def write_model(folder: Path) -> torch.nn.Module:
    """A c2d_r18_nl with random weights whose non-local blocks are active (non-zero gamma), saved to ``folder``."""
    model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=len(LABEL_NAMES))
    for _, block in nonlocal_blocks(model):
        torch.nn.init.normal_(block.norm.weight, std=0.5)
    model.nlzoo_config.data_config = TINY_DATA
    model.nlzoo_config.label_names = list(LABEL_NAMES)
    nlzoo.save_pretrained(model, folder)
    return model.eval()
