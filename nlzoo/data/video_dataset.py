"""Datasets of decoded, transformed clips: random clips for training, all test views of a video for evaluation.

Unreadable videos (missing, empty, corrupt, truncated, no decodable frames) never stop an epoch. Each one
raises a :class:`SkippedVideoWarning` naming its path and the reason, and samples carry a ``skipped`` count
and the ``skipped_videos`` ("path: reason") that travel through workers and ranks into the per-epoch total
and the end-of-epoch report:

- training replaces the video by another one drawn from the item's own random stream (the substitute
  keeps its own label), so batches keep their size and DDP ranks stay in step;
- evaluation yields the video with zero views, so it drops out of the video-level metrics.

Samples are dicts: ``video`` (C, T, H, W) / (V, C, T, H, W) float, ``label`` (a class index, or a multi-hot
float vector with ``multi_label``), ``index`` (position in the dataset), ``skipped``; views also carry
``view`` (clip-major: view = clip * num_crops + crop).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import BrokenDatasetError, ConfigError, InputNotFoundError, LimitError, VideoDecodeError
from ..zoo import DataConfig
from .clip_sampling import random_clip, uniform_clips
from .video_io import read_frames
from .video_sources import VideoItem
from .video_transforms import EvalViewTransform, TrainClipTransform

Sample = dict[str, Any]


class SkippedVideoWarning(UserWarning):
    """A video could not be read and was skipped."""


# Why a video is skipped: it cannot be read, or it is over a size limit (too many frames, frames too large).
UNREADABLE = (VideoDecodeError, InputNotFoundError, LimitError)


def warn_skipped(err: Exception) -> str:
    """Warn about a skipped video; returns the "path: reason" line for the skip report."""
    warnings.warn(f"skipping video {err}", SkippedVideoWarning, stacklevel=3)
    return str(err)


def check_clip_config(config: DataConfig) -> None:
    """Raise ValueError unless ``config`` describes clips (num_frames and sampling_rate >= 1)."""
    for name in ("num_frames", "sampling_rate"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"the data config needs {name} >= 1 for video clips; got {value!r}")


class _LabelledVideos(Dataset):
    def __init__(
        self, items: Sequence[VideoItem], *, num_classes: int, multi_label: bool, backend: str, config: DataConfig
    ) -> None:
        check_clip_config(config)
        if not items:
            raise ConfigError("no videos to load")
        self.items, self.num_classes, self.multi_label = list(items), num_classes, multi_label
        self.backend, self.config = backend, config
        if not multi_label:
            multi = next((it for it in self.items if len(it.labels) != 1), None)
            if multi is not None:
                raise ConfigError(f"{multi.path} has labels {multi.labels}; set multi_label=True for multi-label data")

    def __len__(self) -> int:
        return len(self.items)

    def target(self, item: VideoItem) -> torch.Tensor:
        """A class index (long scalar), or a multi-hot (num_classes,) float vector."""
        if not self.multi_label:
            return torch.tensor(item.label)
        target = torch.zeros(self.num_classes)
        target[list(item.labels)] = 1.0
        return target


class VideoClipDataset(_LabelledVideos):
    """One random training clip per visit of a video.

    ``dataset[(index, seed)]`` (what :class:`~nlzoo.data.samplers.EpochSampler` yields) makes the clip's
    start, scale, crop and flip a function of the seed alone, so runs reproduce whatever the worker count
    and resumes replay the same data; ``dataset[index]`` draws a seed from torch's global generator.

    Args:
        items: the videos.
        config: the model's data config (frames, sampling rate, scales, crop, mean/std).
        num_classes: classes (for multi-hot targets).
        multi_label: targets are multi-hot vectors.
        backend: video decoder (see :func:`~nlzoo.data.video_io.list_backends`).
        max_retries: unreadable videos replaced in a row before giving up (the dataset is then broken).
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        *,
        config: DataConfig,
        num_classes: int,
        multi_label: bool = False,
        backend: str = "pyav",
        max_retries: int = 10,
    ) -> None:
        super().__init__(items, num_classes=num_classes, multi_label=multi_label, backend=backend, config=config)
        self.transform = TrainClipTransform(config)
        self.max_retries = max_retries

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        index, seed = key if isinstance(key, tuple) else (key, int(torch.randint(2**62, ())))
        generator = torch.Generator().manual_seed(seed)
        failures: list[str] = []
        for _ in range(self.max_retries + 1):
            item = self.items[index]
            try:
                video = self._clip(item, generator)
            except UNREADABLE as err:
                failures.append(warn_skipped(err))
                index = int(torch.randint(len(self.items), (), generator=generator))
                continue
            return {
                "video": video,
                "label": self.target(item),
                "index": index,
                "skipped": len(failures),
                "skipped_videos": failures,
            }
        raise BrokenDatasetError(
            f"{len(failures)} videos in a row could not be read; the dataset looks broken. Last errors: "
            + "; ".join(failures[-3:])
        )

    def _clip(self, item: VideoItem, generator: torch.Generator) -> torch.Tensor:
        cfg = self.config

        def pick(video_frames: int) -> list[int]:
            return random_clip(
                video_frames,
                num_frames=cfg.num_frames,  # type: ignore[arg-type]
                sampling_rate=cfg.sampling_rate,  # type: ignore[arg-type]
                generator=generator,
            )

        scale = self.transform.draw_scale(generator)
        frames, _ = read_frames(item.path, pick, backend=self.backend, short_side=scale)
        return self.transform(frames, generator=generator, scale=scale)


class MultiViewVideoDataset(_LabelledVideos):
    """All test views of one video per item: ``num_clips`` uniformly spaced clips x ``num_crops`` crops.

    Each item's ``video`` is (num_clips * num_crops, C, T, H, W), clip-major; ``index`` and ``view`` say which
    video and which view every row is, so scores can be averaged per video after batching and gathering.
    An unreadable video yields zero views and ``skipped = 1``.

    Args:
        items: the videos.
        config: the model's data config (frames, sampling rate, test_scale, crop, mean/std).
        num_clips: temporal views (the paper: 10).
        num_crops: spatial views (the paper: 3).
        num_classes: classes (for multi-hot targets).
        multi_label: targets are multi-hot vectors.
        backend: video decoder.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        *,
        config: DataConfig,
        num_clips: int,
        num_crops: int,
        num_classes: int,
        multi_label: bool = False,
        backend: str = "pyav",
    ) -> None:
        super().__init__(items, num_classes=num_classes, multi_label=multi_label, backend=backend, config=config)
        if num_clips < 1:
            raise ConfigError(f"num_clips must be >= 1; got {num_clips}")
        self.transform = EvalViewTransform(config, num_crops=num_crops)
        self.num_clips, self.num_crops = num_clips, num_crops

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        try:
            views = self._views(item)
        except UNREADABLE as err:
            empty = torch.zeros(0, 3, self.config.num_frames, *self.config.crop_size)
            return self._rows(index, empty, item, [warn_skipped(err)])
        return self._rows(index, views, item, [])

    def _views(self, item: VideoItem) -> torch.Tensor:
        frames = read_views(item.path, self.config, num_clips=self.num_clips, backend=self.backend)
        per_clip = frames.split(self.config.num_frames)  # type: ignore[arg-type]
        return torch.cat([self.transform(clip) for clip in per_clip])

    def _rows(self, index: int, views: torch.Tensor, item: VideoItem, skipped: list[str]) -> Sample:
        n = views.shape[0]
        target = self.target(item)
        return {
            "video": views,
            "label": target.expand(n, *target.shape).clone(),
            "index": torch.full((n,), index, dtype=torch.long),
            "view": torch.arange(n),
            "skipped": len(skipped),
            "skipped_videos": skipped,
        }


def read_views(
    path: str, config: DataConfig, *, num_clips: int, backend: str = "pyav", threads: int = 1
) -> torch.Tensor:
    """The frames of ``num_clips`` uniformly spaced clips, clip after clip: (num_clips * T, H, W, 3) uint8.

    Raises:
        InputNotFoundError: nothing at ``path``, or a directory.
        VideoDecodeError: not a video, or the frames cannot be produced.
    """

    def pick(video_frames: int) -> list[int]:
        clips = uniform_clips(
            video_frames,
            num_clips=num_clips,
            num_frames=config.num_frames,  # type: ignore[arg-type]
            sampling_rate=config.sampling_rate,  # type: ignore[arg-type]
        )
        return [i for clip in clips for i in clip]

    return read_frames(path, pick, backend=backend, short_side=config.test_scale, threads=threads)[0]


def collate_clips(samples: Sequence[Sample]) -> Sample:
    """Stack training clips: video (B, C, T, H, W), label (B,) or (B, K), index (B,), skipped (total),
    skipped_videos ("path: reason" lines)."""
    return {
        "video": torch.stack([s["video"] for s in samples]),
        "label": torch.stack([s["label"] for s in samples]),
        "index": torch.tensor([s["index"] for s in samples]),
        **_skips(samples),
    }


def collate_views(samples: Sequence[Sample]) -> Sample:
    """Concatenate the views of several videos: video (N, C, T, H, W), label/index/view (N, ...), skipped,
    skipped_videos."""
    return {
        **{key: torch.cat([s[key] for s in samples]) for key in ("video", "label", "index", "view")},
        **_skips(samples),
    }


def _skips(samples: Sequence[Sample]) -> Sample:
    return {
        "skipped": torch.tensor(sum(s["skipped"] for s in samples)),
        "skipped_videos": [line for s in samples for line in s.get("skipped_videos", [])],
    }
