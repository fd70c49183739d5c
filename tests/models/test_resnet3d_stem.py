"""The stem settings other frameworks' checkpoints need: temporal pool kernel and spatial pool padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nlzoo.models import ResNet3d


def test_a_unit_temporal_pool_kernel_keeps_every_other_frame() -> None:
    """mmaction2's stem: pool (1,3,3) with stride (2,2,2) is a spatial pool of frames 0, 2, 4, ..."""
    model = ResNet3d(18, temporal="i3d", num_classes=3, stem_temporal_stride=2, stem_pool_temporal_kernel=1)
    x = torch.randn(1, 64, 8, 20, 20)
    torch.testing.assert_close(model.maxpool(x), F.max_pool3d(x[:, :, ::2], (1, 3, 3), (1, 2, 2), (0, 1, 1)))


def test_the_default_temporal_kernel_equals_the_stride() -> None:
    model = ResNet3d(18, num_classes=3, stem_temporal_stride=2)
    assert model.maxpool.kernel_size == (2, 3, 3) and model.maxpool.stride == (2, 2, 2)


@pytest.mark.parametrize(("padding", "size"), [(1, 56), (0, 55)])
def test_stem_pool_padding(padding: int, size: int) -> None:
    model = ResNet3d(18, num_classes=3, stem_pool_padding=padding).eval()
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(torch.randn(1, 3, 1, 224, 224)))))
    assert stem.shape[-2:] == (size, size)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 2, 224, 224)).shape == (1, 3)


def test_minimum_frames_follow_the_stem() -> None:
    assert ResNet3d(18, stem_temporal_stride=2).min_input_size() == (3, 32, 32)
    assert ResNet3d(18, stem_temporal_stride=2, stem_pool_temporal_kernel=1).min_input_size() == (1, 32, 32)
    with pytest.raises(ValueError, match=r"needs at least 3 frame\(s\)"):
        ResNet3d(18, stem_temporal_stride=2)(torch.randn(1, 3, 2, 32, 32))


def test_bad_stem_arguments() -> None:
    with pytest.raises(ValueError, match="stem_pool_padding must be 0"):
        ResNet3d(18, stem_pool_padding=2)
    with pytest.raises(ValueError, match="stem_pool_temporal_kernel must be 1, 2 or 3"):
        ResNet3d(18, stem_pool_temporal_kernel=0)
