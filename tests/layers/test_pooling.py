"""Max-pooling at the input's precision under autocast, and non-overlapping windows as strided maxima."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nlzoo.layers.pooling import MaxPool3d


def test_pools_bf16_maps_in_bf16_with_the_values_of_fp32_pooling() -> None:
    x = torch.randn(1, 8, 4, 9, 9).to(torch.bfloat16)
    pool = MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pool(x)
        upcast = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))  # what plain autocast does: fp32
    assert out.dtype == torch.bfloat16 and upcast.dtype == torch.float32
    assert torch.equal(out.float(), upcast)
    assert torch.equal(pool(x.float()), upcast)  # outside autocast: nn.MaxPool3d


@settings(max_examples=40, deadline=None)
@given(
    kernel=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3)),
    size=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 5), st.integers(1, 7)),
    channels_last=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.bfloat16]),
    nan=st.booleans(),
)
def test_tiling_windows_give_max_pools_values_and_layout(
    kernel: tuple[int, int, int],
    size: tuple[int, int, int, int],
    channels_last: bool,
    dtype: torch.dtype,
    nan: bool,
) -> None:
    batch, *thw = size
    x = torch.randn(batch, 3, *thw).to(dtype)
    if nan:
        x.view(-1)[x.numel() // 2] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    pool = MaxPool3d(kernel)  # stride = kernel, no padding: the tiled path
    if any(s < k for s, k in zip(thw, kernel, strict=True)):
        with pytest.raises(RuntimeError):  # too small: max-pool's own error
            pool(x)
        return
    with torch.no_grad():
        out = pool(x)
    expected = F.max_pool3d(x, kernel)
    assert torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.nan_to_num(), expected.nan_to_num()) and out.dtype == dtype
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last_3d)


def test_gradients_and_overlapping_windows_keep_max_pooling() -> None:
    x = torch.ones(1, 2, 2, 4, 4, requires_grad=True)  # all ties: max-pool's backward gives each window's 1 to one
    MaxPool3d((1, 2, 2))(x).sum().backward()
    assert x.grad is not None and x.grad.sum() == 2 * 2 * 2 * 2 and x.grad.max() == 1
    overlapping = MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    y = torch.randn(1, 2, 2, 7, 7)
    assert torch.equal(overlapping(y), F.max_pool3d(y, (1, 3, 3), (1, 2, 2), (0, 1, 1)))
