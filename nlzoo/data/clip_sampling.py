"""Which frames make a clip: ``num_frames`` frames every ``sampling_rate``-th frame (the paper's T x s).

A clip spans ``(num_frames - 1) * sampling_rate + 1`` frames. Videos shorter than that repeat their last
frame (PySlowFast clamps the same way), so every clip has exactly ``num_frames`` frames.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def clip_span(num_frames: int, sampling_rate: int) -> int:
    """Frames covered by one clip."""
    return (num_frames - 1) * sampling_rate + 1


def clip_indices(start: int, *, num_frames: int, sampling_rate: int, video_frames: int) -> list[int]:
    """Frame indices of the clip starting at ``start``, clamped to the video's last frame."""
    return [min(start + i * sampling_rate, video_frames - 1) for i in range(num_frames)]


def random_clip(
    video_frames: int, *, num_frames: int, sampling_rate: int, generator: torch.Generator | None = None
) -> list[int]:
    """A clip at a uniformly random start (training)."""
    room = max(video_frames - clip_span(num_frames, sampling_rate), 0)
    start = int(torch.randint(room + 1, (), generator=generator))
    return clip_indices(start, num_frames=num_frames, sampling_rate=sampling_rate, video_frames=video_frames)


def uniform_clips(video_frames: int, *, num_clips: int, num_frames: int, sampling_rate: int) -> list[list[int]]:
    """``num_clips`` clips at evenly spaced starts, the first at frame 0 and the last ending at the video's end;
    a single clip is centred (the paper's test views, e.g. 10 clips)."""
    if num_clips < 1:
        raise ConfigError(f"num_clips must be >= 1; got {num_clips}")
    room = max(video_frames - clip_span(num_frames, sampling_rate), 0)
    starts = [room // 2] if num_clips == 1 else [round(room * i / (num_clips - 1)) for i in range(num_clips)]
    return [
        clip_indices(s, num_frames=num_frames, sampling_rate=sampling_rate, video_frames=video_frames) for s in starts
    ]
