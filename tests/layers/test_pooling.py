"""Max-pooling at the input's precision under autocast."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
