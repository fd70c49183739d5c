"""Sliding windows over a video collection, for feature extraction (``nlzoo extract-features``).

A window is one clip of the model: ``num_frames`` frames every ``sampling_rate``-th frame (its data config),
covering ``span = (num_frames - 1) * sampling_rate + 1`` frames. Windows start at 0, ``stride``, 2 ``stride``...
as long as they fit in the video; frames after the last full window are not covered. A video shorter than one
window gives one window whose missing frames repeat the last frame (``short="pad"``, PySlowFast's clamping) or
none (``short="skip"``: the video is listed as skipped).

The dataset is iterable: each item is a *chunk* of up to ``windows_per_chunk`` windows of one video (so a long
video never sits in memory whole), and chunks of a video arrive in order with ``last`` on the final one.
Videos are dealt out to DDP ranks and then to DataLoader workers, each video to exactly one of them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..errors import ConfigError, InputNotFoundError, LimitError, VideoDecodeError
from ..zoo import DataConfig
from .clip_sampling import clip_indices, clip_span
from .video_io import open_video
from .video_sources import VIDEO_EXTENSIONS
from .video_transforms import EvalViewTransform

ShortVideos = Literal["pad", "skip"]
LIST_SUFFIXES = (".txt", ".lst", ".list", ".csv")


@dataclass(frozen=True)
class Stride:
    """Window stride: ``frames`` or ``seconds`` (converted per video with its frame rate); neither = the span."""

    frames: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Stride:
        """``"16"`` (frames), ``"2s"`` / ``"0.5s"`` (seconds) or ``None`` (the window's span, no overlap).

        Raises:
            ConfigError: anything else, or a stride that is not positive.
        """
        if text is None:
            return cls()
        value = text.strip().lower()
        try:
            if value.endswith("s"):
                seconds = float(value[:-1])
                if not math.isfinite(seconds) or seconds <= 0:
                    raise ValueError
                return cls(seconds=seconds)
            frames = int(value)
            if frames < 1:
                raise ValueError
            return cls(frames=frames)
        except ValueError:
            raise ConfigError(
                f"--stride must be a positive number of frames (16) or seconds (2s, 0.5s); got {text!r}"
            ) from None

    def in_frames(self, span: int, fps: float) -> int:
        if self.frames is not None:
            return self.frames
        if self.seconds is not None:
            return max(1, round(self.seconds * fps))
        return span

    def __str__(self) -> str:
        return f"{self.seconds}s" if self.seconds is not None else str(self.frames or "span")


def window_starts(video_frames: int, span: int, stride: int, short: ShortVideos = "pad") -> list[int]:
    """First frames of the windows of a ``video_frames``-frame video (see the module docstring)."""
    if video_frames < span:
        return [0] if short == "pad" else []
    return list(range(0, video_frames - span + 1, stride))


@dataclass(frozen=True)
class VideoEntry:
    """A video to process and the name of its outputs (relative to the output folder, without suffix)."""

    path: str
    key: str


def find_videos(source: str | os.PathLike[str]) -> list[VideoEntry]:
    """The videos named by ``source``: a video file, a folder (searched recursively) or a list file (one path
    per line, relative to the list's folder; a trailing ``label`` field is ignored; ``#`` comments).

    Output keys keep each video's relative path (folders) or its path as listed, extension included, so
    ``a.mp4`` and ``a.avi`` do not collide.

    Raises:
        InputNotFoundError: ``source`` (or a listed file's folder) does not exist.
        ConfigError: a list names the same output twice, or a folder holds no video.
    """
    src = Path(source)
    if not src.exists():
        raise InputNotFoundError(f"{src} does not exist (give a video, a folder of videos or a list file)")
    if src.is_dir():
        # A broken link is kept, so that index.csv lists it instead of it vanishing from the run.
        paths = sorted(
            p for p in src.rglob("*") if (p.is_file() or p.is_symlink()) and p.suffix.lower() in VIDEO_EXTENSIONS
        )
        if not paths:
            raise ConfigError(f"{src} holds no video ({', '.join(VIDEO_EXTENSIONS)}), searched recursively")
        return [VideoEntry(str(p), p.relative_to(src).as_posix()) for p in paths]
    if src.suffix.lower() in LIST_SUFFIXES:
        return _read_list(src)
    return [VideoEntry(str(src), src.name)]


def _read_list(path: Path) -> list[VideoEntry]:
    entries: list[VideoEntry] = []
    seen: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = line if line.lower().endswith(VIDEO_EXTENSIONS) else line.rsplit(maxsplit=1)[0]
        video = Path(name) if Path(name).is_absolute() else path.parent / name
        key = Path(name).as_posix().lstrip("/").replace("../", "__/")
        if key in seen:
            raise ConfigError(f"{path} lists {name!r} twice (or two paths that map to the output {key!r})")
        seen[key] = name
        entries.append(VideoEntry(str(video), key))
    if not entries:
        raise ConfigError(f"{path} lists no video")
    return entries


class FeatureWindows(IterableDataset):
    """Chunks of normalised windows: dicts with ``key``, ``path``, ``windows`` (n * crops, C, T, H, W),
    ``start_s`` / ``end_s`` (n,), ``fps``, ``num_frames``, ``last``, and ``error`` (a reason, else ``None``).

    A video that cannot be read yields one chunk with ``error`` set and no windows; the run goes on.

    Args:
        videos: the videos (already filtered to those that still need work).
        config: the model's data config (``num_frames``, ``sampling_rate``, ``test_scale``, crop, mean/std).
        stride: window stride.
        crops: spatial crops per window (1 centre, 3 left/centre/right as the paper's test views).
        short: what to do with videos shorter than one window (``pad`` or ``skip``).
        windows_per_chunk: windows per item (a batch of ``windows_per_chunk * crops`` clips).
        backend: video backend name for :func:`~nlzoo.data.video_io.open_video`.
    """

    def __init__(
        self,
        videos: Sequence[VideoEntry],
        config: DataConfig,
        *,
        stride: Stride = Stride(),
        crops: int = 1,
        short: ShortVideos = "pad",
        windows_per_chunk: int = 8,
        backend: str = "pyav",
    ) -> None:
        if config.num_frames is None or config.sampling_rate is None:
            raise ConfigError("feature windows need a video model (its data config has no num_frames)")
        if crops not in (1, 3):
            raise ConfigError(f"--crops must be 1 or 3; got {crops}")
        if short not in ("pad", "skip"):
            raise ConfigError(f"short videos are padded or skipped ('pad' / 'skip'); got {short!r}")
        if windows_per_chunk < 1:
            raise ConfigError(f"windows per batch must be >= 1; got {windows_per_chunk}")
        self.videos, self.config, self.stride, self.crops, self.short = list(videos), config, stride, crops, short
        self.windows_per_chunk, self.backend = windows_per_chunk, backend
        self.span = clip_span(config.num_frames, config.sampling_rate)
        self.transform = EvalViewTransform(config, num_crops=crops)
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int) -> None:
        """Keep videos ``rank``, ``rank + world_size``, ... (called on every DDP process)."""
        self.rank, self.world_size = rank, world_size

    def my_videos(self) -> list[VideoEntry]:
        """This rank's videos (all DataLoader workers together)."""
        return self.videos[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        videos = self.my_videos()
        worker = get_worker_info()
        if worker is not None:
            videos = videos[worker.id :: worker.num_workers]
        for video in videos:
            yield from self._chunks(video)

    def _chunks(self, video: VideoEntry) -> Iterator[dict[str, Any]]:
        base = {"key": video.key, "path": video.path}
        try:
            with open_video(video.path, backend=self.backend) as reader:
                fps, total = float(reader.fps), int(reader.num_frames)
                starts = window_starts(total, self.span, self.stride.in_frames(self.span, fps), self.short)
                if not starts:
                    yield self._error(base, f"skipped: {total} frames, shorter than one window ({self.span})")
                    return
                for first in range(0, len(starts), self.windows_per_chunk):
                    chunk = starts[first : first + self.windows_per_chunk]
                    yield {
                        **base,
                        **self._read(reader, chunk, total),
                        "start_s": torch.tensor([s / fps for s in chunk], dtype=torch.float64),
                        "end_s": torch.tensor([min(s + self.span, total) / fps for s in chunk], dtype=torch.float64),
                        "fps": fps,
                        "num_frames": total,
                        "last": first + self.windows_per_chunk >= len(starts),
                        "error": None,
                    }
        except VideoDecodeError as err:
            yield self._error(base, err.reason)
        except (LimitError, InputNotFoundError) as err:  # over a limit, or gone: this video only
            yield self._error(base, str(err).removeprefix(f"{video.path}: "))

    def _read(self, reader: Any, starts: list[int], total: int) -> dict[str, torch.Tensor]:
        t, rate = self.config.num_frames, self.config.sampling_rate
        indices = [i for s in starts for i in clip_indices(s, num_frames=t, sampling_rate=rate, video_frames=total)]
        frames = reader.get_frames(indices, short_side=self.config.test_scale)
        views = torch.cat([self.transform(clip) for clip in frames.split(t)])  # type: ignore[arg-type]
        return {"windows": views}

    def _error(self, base: dict[str, str], reason: str) -> dict[str, Any]:
        return {
            **base,
            "windows": torch.empty(0),
            "start_s": torch.empty(0, dtype=torch.float64),
            "end_s": torch.empty(0, dtype=torch.float64),
            "fps": 0.0,
            "num_frames": 0,
            "last": True,
            "error": reason,
        }
