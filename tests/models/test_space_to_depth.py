"""Stride-2 convolutions over few channels, folded into stride-1 ones over 4x the channels: same results."""

from __future__ import annotations

import re
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nlzoo.models import conv_backend
from nlzoo.models.conv_backend import conv_bn_relu, use_inference_convolutions
from nlzoo.models.space_to_depth import fold_input, fold_weight, folds_space


def _folding_in_fp32_too():
    """Folds fp32 convolutions too (by default only half precision folds), so that the folded path is checked
    against fp32 results on every CPU, not only on those with oneDNN bf16 kernels."""
    return mock.patch.object(conv_backend, "folds_space", lambda conv, dtype: folds_space(conv, torch.bfloat16))


@settings(max_examples=40, deadline=None)
@given(
    dims=st.sampled_from([2, 3]),
    channels=st.integers(1, 4),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 7), st.integers(1, 7)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 3)),
    temporal_stride=st.integers(1, 2),
    size=st.tuples(st.integers(1, 6), st.integers(1, 17), st.integers(1, 17)),
    batch=st.integers(1, 2),
    channels_last=st.booleans(),
)
def test_folded_convolutions_match_the_strided_ones(
    dims: int,
    channels: int,
    kernel: tuple[int, int, int],
    padding: tuple[int, int, int],
    temporal_stride: int,
    size: tuple[int, int, int],
    batch: int,
    channels_last: bool,
) -> None:
    torch.manual_seed(0)
    kernel, padding, size = kernel[3 - dims :], padding[3 - dims :], size[3 - dims :]
    stride = (temporal_stride, 2, 2)[3 - dims :]
    layer = nn.Conv3d if dims == 3 else nn.Conv2d
    conv = layer(channels, 5, kernel, stride, padding).eval()
    x = torch.randn(batch, channels, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d if dims == 3 else torch.channels_last)
    convolve = F.conv3d if dims == 3 else F.conv2d
    assert folds_space(conv, torch.bfloat16) and not folds_space(conv, torch.float32)
    try:
        expected = convolve(x, conv.weight, conv.bias, stride, padding)
    except RuntimeError as error:  # the kernel does not fit: PyTorch's own error
        use_inference_convolutions(conv)
        with torch.inference_mode(), pytest.raises(RuntimeError, match=re.escape(str(error).splitlines()[0])):
            conv(x)
        return
    use_inference_convolutions(conv)
    with torch.inference_mode(), _folding_in_fp32_too():
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x), expected.relu(), rtol=1e-5, atol=1e-5
        )
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                half = conv(x)
            assert half.dtype == torch.bfloat16
            torch.testing.assert_close(half.float(), expected, rtol=3e-2, atol=3e-2)


def test_the_fold_is_the_same_sum_by_hand() -> None:
    """fold_input / fold_weight on their own: a stride-1 convolution of the folded tensors is the strided one."""
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 4, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False)
    x = torch.randn(1, 3, 4, 20, 18)
    folded = fold_input(conv, x, torch.float64)
    assert folded.shape == (1, 12, 4, 13, 12) and folded.dtype == torch.float64
    out = F.conv3d(folded, fold_weight(conv.weight.double()), padding=(1, 0, 0))
    torch.testing.assert_close(out, F.conv3d(x.double(), conv.weight.double(), None, (1, 2, 2), (1, 3, 3)))


def test_only_strided_half_precision_convolutions_over_few_channels_are_folded() -> None:
    half = torch.bfloat16
    assert folds_space(nn.Conv2d(3, 8, 7, 2, 3), half) and folds_space(nn.Conv2d(3, 8, 7, 2, 3), torch.float16)
    assert folds_space(nn.Conv3d(3, 8, (5, 7, 7), (1, 2, 2), (2, 3, 3)), half)
    assert not folds_space(nn.Conv2d(3, 8, 7, 2, 3), torch.float32)  # fp32 only gains the zero taps
    assert not folds_space(nn.Conv2d(3, 8, 3, 1, 1), half)  # stride 1
    assert not folds_space(nn.Conv2d(3, 8, 3, (2, 1), 1), half)  # strided one way only
    assert not folds_space(nn.Conv2d(8, 8, 3, 2, 1), half)  # enough channels already
    assert not folds_space(nn.Conv2d(4, 8, 3, 2, 1, groups=2), half)
    assert not folds_space(nn.Conv2d(3, 8, 3, 2, 1, dilation=2), half)
    assert not folds_space(nn.Conv2d(3, 8, 3, 2, "valid"), half)
