from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest

from nlzoo.data import SyntheticVideoDataModule, SyntheticVideoSpec, ensure_synthetic_videos, write_synthetic_videos
from nlzoo.data.synthetic import render_video
from nlzoo.data.synthetic_common import PALETTE

SPEC = SyntheticVideoSpec(num_train=6, num_val=2, num_test=2, num_frames=8)


def test_generation_is_deterministic_and_seeded(tmp_path: Path) -> None:
    a = write_synthetic_videos(tmp_path / "a", SPEC)
    b = write_synthetic_videos(tmp_path / "b", SPEC)
    c = write_synthetic_videos(tmp_path / "c", SyntheticVideoSpec(**{**SPEC.__dict__, "seed": 1}))
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert len(files) == 6 + 2 + 2 + 5  # videos, 3 list files, labels.txt, meta.json
    _match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert mismatch == [] and errors == []
    assert not filecmp.cmp(a / "videos/train/00000.mp4", c / "videos/train/00000.mp4", shallow=False)
    lines = (a / "train.txt").read_text().splitlines()
    assert sorted(int(line.split()[1]) for line in lines) == [0, 0, 0, 1, 1, 1]  # balanced
    assert (a / "labels.txt").read_text().split() == ["different_colour", "same_colour"]


def _objects(frame: np.ndarray) -> list[tuple[tuple[float, float], int]]:
    """(centre, palette index) of the coloured squares in a frame (greys and noise have little saturation)."""
    saturated = frame.max(-1).astype(int) - frame.min(-1) > 90
    if not saturated.any():
        return []
    ys, xs = np.nonzero(saturated)
    colour = frame[ys, xs].mean(0)
    nearest = int(np.argmin([np.abs(colour - p).sum() for p in PALETTE]))
    return [((ys.mean(), xs.mean()), nearest)]


@pytest.mark.parametrize("same", [True, False])
def test_label_is_a_relation_between_distant_objects_never_seen_together(same: bool) -> None:
    spec = SyntheticVideoSpec(num_frames=16)
    for seed in range(10):
        frames = render_video(spec, np.random.default_rng(seed), same=same)
        seen = [_objects(f) for f in frames]
        first, last = seen[0][0], seen[-1][0]
        assert (first[1] == last[1]) == same
        assert np.hypot(first[0][0] - last[0][0], first[0][1] - last[0][1]) >= 0.5 * 64 - 1
        visible = [i for i, objs in enumerate(seen) if objs]
        assert visible == [*range(6), *range(10, 16)]  # A in frames 0-5, B in 10-15: a gap between them


def test_ensure_reuses_matching_data_and_refuses_other_specs(tmp_path: Path) -> None:
    root = ensure_synthetic_videos(tmp_path / "syn", SPEC)
    stamp = (root / "videos/train/00000.mp4").stat().st_mtime_ns
    ensure_synthetic_videos(root, SPEC)
    assert (root / "videos/train/00000.mp4").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="not generated with this spec"):
        ensure_synthetic_videos(root, SyntheticVideoSpec(**{**SPEC.__dict__, "num_train": 7}))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="num_colours"):
        SyntheticVideoSpec(num_colours=9)
    with pytest.raises(ValueError, match="no room"):
        SyntheticVideoSpec(size=(32, 32))


def test_datamodule_generates_in_prepare_data(tmp_path: Path) -> None:
    data = SyntheticVideoDataModule(
        str(tmp_path / "syn"),
        num_train=4,
        num_val=2,
        num_test=2,
        video_frames=8,
        data_config={"num_frames": 4, "sampling_rate": 2, "crop_size": [32, 32], "train_scale": [32, 36]},
        model="c2d_r18",
        batch_size=2,
        num_workers=0,
    )
    assert data.num_classes == 2 and data.label_names == ["different_colour", "same_colour"]
    data.prepare_data()
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["video"].shape == (2, 3, 4, 32, 32)
    val = next(iter(data.val_dataloader()))
    assert val["video"].shape == (1, 3, 4, 32, 32)  # val_views defaults to one centre view
