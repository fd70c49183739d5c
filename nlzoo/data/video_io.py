"""Video decoding behind a small interface: open a file, read chosen frames by index.

A backend opens a path and returns a :class:`VideoReader`; datasets ask it for the frame indices of the
clips they need, so readers seek instead of decoding whole videos. PyAV (FFmpeg bundled in its wheels)
is the default; another decoder (e.g. torchcodec, where FFmpeg's shared libraries are installed) plugs in
with :func:`register_backend`.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import av
import numpy as np
import torch

from ..errors import ConfigError, VideoDecodeError

# Frames between two wanted ones above which a reader seeks instead of decoding through the gap.
SEEK_GAP = 32


class VideoReader(ABC):
    """An open video whose frames are addressed by index 0..num_frames-1 (presentation order)."""

    path: str
    num_frames: int
    fps: float

    @abstractmethod
    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as a (len(indices), H, W, 3) uint8 RGB tensor.

        Raises:
            VideoDecodeError: an index is out of range or a frame could not be decoded.
        """

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the file."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


VideoBackend = Callable[[str], VideoReader]
_BACKENDS: dict[str, VideoBackend] = {}


def register_backend(name: str) -> Callable[[VideoBackend], VideoBackend]:
    """Register ``open(path) -> VideoReader`` under ``name`` (a decorator)."""

    def decorator(opener: VideoBackend) -> VideoBackend:
        if name in _BACKENDS:
            raise ValueError(f"video backend {name!r} is already registered")
        _BACKENDS[name] = opener
        return opener

    return decorator


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def open_video(path: str | os.PathLike[str], *, backend: str = "pyav") -> VideoReader:
    """Open ``path`` with a registered backend.

    Raises:
        ValueError: unknown backend.
        VideoDecodeError: the file is missing, unreadable or has no video frames.
    """
    if backend not in _BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; available: {', '.join(list_backends())}")
    return _BACKENDS[backend](os.fspath(path))


def split_runs(indices: Sequence[int], *, gap: int = SEEK_GAP) -> list[list[int]]:
    """Sorted unique ``indices`` cut into runs wherever two neighbours are more than ``gap`` frames apart."""
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and i - runs[-1][-1] <= gap:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


class PyAVReader(VideoReader):
    """Frame-accurate reads with PyAV: seek to the keyframe before each run of wanted frames, decode forward.

    A frame's index is its presentation time times the stream's average frame rate, so seeking cannot shift
    a clip by a frame, B-frames included. Only wanted frames are converted to RGB.
    """

    def __init__(self, path: str, *, threads: int = 1) -> None:
        self.path = path
        if not os.path.isfile(path):
            raise VideoDecodeError(path, "file not found")
        try:
            self._container = av.open(path)
        except (av.FFmpegError, OSError, ValueError) as err:
            raise VideoDecodeError(path, f"cannot open ({err})") from err
        if not self._container.streams.video:
            self.close()
            raise VideoDecodeError(path, "no video stream")
        self._stream = stream = self._container.streams.video[0]
        stream.codec_context.thread_count = threads
        rate = stream.average_rate or stream.guessed_rate
        if not rate or stream.time_base is None:
            self.close()
            raise VideoDecodeError(path, "unknown frame rate")
        self._rate = Fraction(rate)
        self._time_base = Fraction(stream.time_base)
        self._start = stream.start_time or 0
        self.fps = float(self._rate)
        self.num_frames = stream.frames or self._frames_from_duration()
        if self.num_frames <= 0:
            self.close()
            raise VideoDecodeError(path, "no frames (empty video)")

    def _frames_from_duration(self) -> int:
        if self._stream.duration:
            seconds = self._stream.duration * self._time_base
        elif self._container.duration:
            seconds = Fraction(self._container.duration, av.time_base)
        else:
            return 0
        return round(seconds * self._rate)

    def _index(self, pts: int) -> int:
        return round((pts - self._start) * self._time_base * self._rate)

    def _pts(self, index: int) -> int:
        return self._start + int(Fraction(index) / self._rate / self._time_base)

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise VideoDecodeError(self.path, f"frame indices {bad[:5]} outside 0..{self.num_frames - 1}")
        found: dict[int, np.ndarray] = {}
        try:
            for run in split_runs(indices):
                self._decode_run(run, found)
        except av.FFmpegError as err:
            raise VideoDecodeError(self.path, f"decoding failed ({err})") from err
        missing = sorted(set(indices) - set(found))
        if missing:
            raise VideoDecodeError(
                self.path,
                f"frames {missing[:5]} could not be decoded ({len(missing)} missing of {self.num_frames} "
                "reported); the file may be truncated",
            )
        return torch.from_numpy(np.stack([found[i] for i in indices]))

    def _decode_run(self, run: list[int], found: dict[int, np.ndarray]) -> None:
        wanted, last = set(run), run[-1]
        frames = self._frames_from(run[0])
        first = next(frames, None)
        if first is None:
            return
        # Some containers seek past the target: then decode from the start instead.
        frames = self._frames_from(0) if first[0] > run[0] else itertools.chain([first], frames)
        for index, frame in frames:
            if index in wanted:
                found[index] = frame.to_ndarray(format="rgb24")
            if index >= last:
                return

    def _frames_from(self, index: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) pairs from the keyframe at or before ``index`` onwards."""
        self._container.seek(self._pts(index), stream=self._stream, backward=True, any_frame=False)
        for frame in self._container.decode(self._stream):
            if frame.pts is not None:
                yield self._index(frame.pts), frame

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


@register_backend("pyav")
def open_pyav(path: str, **kwargs: Any) -> VideoReader:
    """Open with PyAV (the default backend)."""
    return PyAVReader(path, **kwargs)
