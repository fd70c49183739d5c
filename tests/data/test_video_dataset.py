from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from nlzoo.data import (
    EpochSampler,
    MultiViewVideoDataset,
    SkippedVideoWarning,
    VideoClipDataset,
    VideoItem,
    collate_clips,
    collate_views,
)
from nlzoo.data.clip_sampling import uniform_clips
from nlzoo.errors import BrokenDatasetError
from nlzoo.zoo import DataConfig

from .video_files import MARKER, broken_videos, frame_number, write_numbered_video

# mean 0 / std 1/255 keeps pixel values on the 0-255 scale, so frame numbers can be read back.
CONFIG = DataConfig(
    crop_size=(48, 48),
    mean=(0.0, 0.0, 0.0),
    std=(1 / 255, 1 / 255, 1 / 255),
    num_frames=4,
    sampling_rate=3,
    train_scale=(48, 48),
    test_scale=48,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ds")
    good = write_numbered_video(folder / "good.mp4", 60)
    other = write_numbered_video(folder / "other.mp4", 30)
    return {"good": good, "other": other, **broken_videos(folder / "broken", good)}


def test_multiview_views_are_clip_major_with_left_centre_right_crops(videos: dict[str, Path]) -> None:
    dataset = MultiViewVideoDataset(
        [VideoItem(str(videos["good"]), (1,))], config=CONFIG, num_clips=4, num_crops=3, num_classes=2
    )
    sample = dataset[0]
    assert sample["video"].shape == (12, 3, 4, 48, 48)
    assert sample["view"].tolist() == list(range(12))
    assert sample["index"].tolist() == [0] * 12 and sample["label"].tolist() == [1] * 12
    expected_clips = uniform_clips(60, num_clips=4, num_frames=4, sampling_rate=3)
    for view, clip in enumerate(sample["video"]):
        assert [frame_number(clip[:, t]) for t in range(4)] == expected_clips[view // 3]
        left_edge, right_edge = clip[:, :, :, 0].mean().item(), clip[:, :, :, -1].mean().item()
        crop = view % 3
        assert (left_edge > 200) == (crop == 0)  # only the left crop shows the white left marker
        assert (right_edge < 40) == (crop == 2)  # only the right crop shows the black right marker
    assert MARKER < 8  # the centre crop starts at column 8, past the marker


def test_train_clip_is_a_strided_clip_fixed_by_its_seed(videos: dict[str, Path]) -> None:
    dataset = VideoClipDataset([VideoItem(str(videos["good"]), (0,))], config=CONFIG, num_classes=2)
    a, b = dataset[(0, 123)], dataset[(0, 123)]
    torch.testing.assert_close(a["video"], b["video"])
    numbers = [frame_number(a["video"][:, t]) for t in range(4)]
    assert [y - x for x, y in itertools.pairwise(numbers)] == [3, 3, 3] and 0 <= numbers[0] <= 60 - 10
    starts = {frame_number(dataset[(0, seed)]["video"][:, 0]) for seed in range(12)}
    assert len(starts) > 1
    assert a["label"].item() == 0 and a["skipped"] == 0 and a["index"] == 0


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    sampler = EpochSampler(10, seed=7)
    first = list(sampler)
    assert sorted(i for i, _ in first) == list(range(10))
    assert list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) != sorted(first)  # new order and new per-item seeds
    ordered = list(EpochSampler(10, seed=7, shuffle=False))
    assert [i for i, _ in ordered] == list(range(10))
    assert dict(ordered) == dict(first)  # an item's seed depends on (seed, epoch, index), not on the order


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated"])
def test_eval_skips_unreadable_video_with_zero_views(videos: dict[str, Path], kind: str) -> None:
    items = [VideoItem(str(videos["good"]), (0,)), VideoItem(str(videos[kind]), (1,))]
    dataset = MultiViewVideoDataset(items, config=CONFIG, num_clips=2, num_crops=3, num_classes=2)
    with pytest.warns(SkippedVideoWarning, match=str(videos[kind])):
        batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate_views)))
    assert batch["video"].shape[0] == 6 and set(batch["index"].tolist()) == {0}
    assert batch["skipped"].item() == 1


def test_train_replaces_unreadable_video_and_keeps_the_substitute_label(videos: dict[str, Path]) -> None:
    items = [
        VideoItem(str(videos["garbage"]), (0,)),
        VideoItem(str(videos["missing"]), (0,)),
        VideoItem(str(videos["other"]), (1,)),
    ]
    dataset = VideoClipDataset(items, config=CONFIG, num_classes=2)
    loader = DataLoader(dataset, batch_size=3, sampler=EpochSampler(3, seed=0), collate_fn=collate_clips)
    with pytest.warns(SkippedVideoWarning):
        batch = next(iter(loader))
    assert batch["video"].shape == (3, 3, 4, 48, 48)
    assert batch["index"].tolist() == [2, 2, 2] and batch["label"].tolist() == [1, 1, 1]
    assert batch["skipped"].item() >= 2  # both broken videos were visited at least once


def test_videos_over_a_size_limit_are_skipped_like_unreadable_ones(
    tmp_path: Path, videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = write_numbered_video(tmp_path / "wide.mp4", 30, size=(48, 96))
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", str(48 * 64))  # the good videos' frames, not the wide one's
    items = [VideoItem(str(wide), (0,)), VideoItem(str(videos["other"]), (1,))]
    views = MultiViewVideoDataset(items, config=CONFIG, num_clips=2, num_crops=1, num_classes=2)
    with pytest.warns(SkippedVideoWarning, match=rf"skipping video {wide}: its 96x48 frames have"):
        batch = collate_views([views[0], views[1]])
    assert set(batch["index"].tolist()) == {1} and batch["skipped"].item() == 1
    assert batch["skipped_videos"][0].startswith(f"{wide}: ")
    clips = VideoClipDataset(items, config=CONFIG, num_classes=2)
    with pytest.warns(SkippedVideoWarning, match=str(wide)):
        sample = clips[(0, 0)]
    assert sample["index"] == 1 and sample["skipped"] == 1


def test_a_dataset_of_only_broken_videos_fails_with_a_clear_error(videos: dict[str, Path]) -> None:
    dataset = VideoClipDataset([VideoItem(str(videos["empty"]), (0,))], config=CONFIG, num_classes=1, max_retries=3)
    broken = pytest.raises(BrokenDatasetError, match="4 videos in a row could not be read")
    with pytest.warns(SkippedVideoWarning), broken:
        dataset[(0, 0)]


def test_multi_label_targets_are_multi_hot(videos: dict[str, Path]) -> None:
    item = VideoItem(str(videos["good"]), (0, 2))
    dataset = MultiViewVideoDataset([item], config=CONFIG, num_clips=1, num_crops=1, num_classes=4, multi_label=True)
    assert dataset[0]["label"].tolist() == [[1.0, 0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="set multi_label=True"):
        VideoClipDataset([item], config=CONFIG, num_classes=4)


def test_clip_config_is_required(videos: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="num_frames >= 1"):
        VideoClipDataset([VideoItem(str(videos["good"]), (0,))], config=CONFIG.replace(num_frames=None), num_classes=2)
