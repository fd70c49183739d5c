from __future__ import annotations

import itertools

import torch

from nlzoo.data.clip_sampling import clip_span, random_clip, uniform_clips


def test_random_clip_is_strided_and_inside_the_video() -> None:
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(1000):
        clip = random_clip(100, num_frames=8, sampling_rate=8, generator=generator)
        assert [b - a for a, b in itertools.pairwise(clip)] == [8] * 7
        assert clip[0] >= 0 and clip[-1] <= 99
        starts.add(clip[0])
    assert starts == set(range(100 - clip_span(8, 8) + 1))  # every start is reachable


def test_short_videos_repeat_their_last_frame() -> None:
    assert random_clip(10, num_frames=4, sampling_rate=4) == [0, 4, 8, 9]


def test_uniform_clips_cover_the_video() -> None:
    clips = uniform_clips(100, num_clips=10, num_frames=8, sampling_rate=8)
    assert len(clips) == 10
    assert clips[0][0] == 0 and clips[-1][-1] == 99
    starts = [c[0] for c in clips]
    assert starts == sorted(starts)
    assert uniform_clips(100, num_clips=1, num_frames=4, sampling_rate=2) == [[46, 48, 50, 52]]  # centred
