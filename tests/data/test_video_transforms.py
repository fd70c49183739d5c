from __future__ import annotations

import pytest
import torch

from nlzoo.data.video_transforms import (
    EvalViewTransform,
    TrainClipTransform,
    normalize,
    resize_short_side,
    view_crop_origins,
)
from nlzoo.zoo import DataConfig

CONFIG = DataConfig(
    crop_size=(32, 32),
    mean=(0.4, 0.5, 0.6),
    std=(0.2, 0.25, 0.5),
    num_frames=4,
    sampling_rate=2,
    train_scale=(36, 44),
    test_scale=36,
)


def test_normalize_matches_the_formula() -> None:
    frames = torch.randint(0, 256, (4, 3, 5, 6), dtype=torch.uint8)
    out = normalize(frames, CONFIG.mean, CONFIG.std)
    mean, std = torch.tensor(CONFIG.mean).view(3, 1, 1, 1), torch.tensor(CONFIG.std).view(3, 1, 1, 1)
    expected = (frames.permute(1, 0, 2, 3).float() / 255 - mean) / std
    assert out.shape == (3, 4, 5, 6)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("hw", "size", "expected"), [((48, 64), 36, (36, 48)), ((64, 48), 36, (48, 36))])
def test_resize_short_side_keeps_aspect(hw: tuple[int, int], size: int, expected: tuple[int, int]) -> None:
    frames = torch.randint(0, 256, (2, 3, *hw), dtype=torch.uint8)
    assert resize_short_side(frames, size).shape[-2:] == expected


def test_view_crops_spread_along_the_long_side() -> None:
    assert view_crop_origins(36, 48, (32, 32), 3) == [(2, 0), (2, 8), (2, 16)]  # left, centre, right
    assert view_crop_origins(48, 36, (32, 32), 3) == [(0, 2), (8, 2), (16, 2)]  # top, centre, bottom
    assert view_crop_origins(36, 48, (32, 32), 1) == [(2, 8)]


def test_train_transform_shape_range_and_reproducibility() -> None:
    frames = torch.randint(0, 256, (4, 48, 64, 3), dtype=torch.uint8)
    transform = TrainClipTransform(CONFIG)
    a = transform(frames, generator=torch.Generator().manual_seed(3))
    b = transform(frames, generator=torch.Generator().manual_seed(3))
    assert a.shape == (3, 4, 32, 32) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    outputs = [transform(frames, generator=torch.Generator().manual_seed(s)) for s in range(8)]
    assert len({o.sum().item() for o in outputs}) > 1  # scale/crop/flip do vary


def test_train_transform_of_a_constant_clip_is_the_normalised_constant() -> None:
    frames = torch.full((4, 40, 50, 3), 200, dtype=torch.uint8)
    out = TrainClipTransform(CONFIG)(frames, generator=torch.Generator().manual_seed(0))
    for c in range(3):
        torch.testing.assert_close(out[c], torch.full_like(out[c], (200 / 255 - CONFIG.mean[c]) / CONFIG.std[c]))


def test_flip_mirrors_the_crop() -> None:
    frames = torch.arange(48 * 64, dtype=torch.float32).view(1, 48, 64, 1).expand(4, 48, 64, 3) % 251
    frames = frames.to(torch.uint8).contiguous()
    config = CONFIG.replace(train_scale=(48, 48), crop_size=(48, 48))  # no resize; crop offset only along W
    plain, flipped = TrainClipTransform(config, flip=False), TrainClipTransform(config)
    seen_flip = False
    for seed in range(6):
        a = plain(frames, generator=torch.Generator().manual_seed(seed))
        b = flipped(frames, generator=torch.Generator().manual_seed(seed))
        if not torch.equal(a, b):
            torch.testing.assert_close(b, a.flip(-1))
            seen_flip = True
    assert seen_flip


def test_eval_views_are_the_three_crops_of_the_resized_frames() -> None:
    frames = torch.randint(0, 256, (4, 48, 64, 3), dtype=torch.uint8)
    views = EvalViewTransform(CONFIG, num_crops=3)(frames)
    assert views.shape == (3, 3, 4, 32, 32)
    resized = resize_short_side(frames.permute(0, 3, 1, 2), 36)  # (4, 3, 36, 48)
    for view, (top, left) in zip(views, [(2, 0), (2, 8), (2, 16)], strict=True):
        expected = normalize(resized[..., top : top + 32, left : left + 32], CONFIG.mean, CONFIG.std)
        torch.testing.assert_close(view, expected)


def test_scales_smaller_than_the_crop_are_rejected() -> None:
    with pytest.raises(ValueError, match="train_scale short side 28 is smaller than crop_size"):
        TrainClipTransform(CONFIG.replace(train_scale=(28, 40)))
    with pytest.raises(ValueError, match="test_scale short side 30"):
        EvalViewTransform(CONFIG.replace(test_scale=30), num_crops=3)
    with pytest.raises(ValueError, match="no train_scale"):
        TrainClipTransform(CONFIG.replace(train_scale=None))


def test_a_narrow_frame_is_refused_before_its_resize(monkeypatch) -> None:
    from nlzoo.errors import LimitError

    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "50000")
    frames = torch.zeros(2, 3, 4, 300)  # short side 4 -> 40: 3,000 x 40 = 120,000 pixels per frame
    with pytest.raises(LimitError, match=r"a 300x4 picture resized to 3000x40"):
        resize_short_side(frames, 40)
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "120000")
    assert resize_short_side(frames, 40).shape == (2, 3, 40, 3000)
