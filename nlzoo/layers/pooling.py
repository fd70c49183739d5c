"""Max-pooling that keeps its input's precision under autocast.

A maximum is exact in every dtype, but CPU autocast lists ``max_pool3d`` among its fp32 ops: under bf16
autocast every 3-D max-pool copied its bf16 activation map to fp32, pooled it at twice the bandwidth and left
the next convolution to cast the result back (i3d_r50_nl: 7 pools per clip, 4 of them in the stem and res2).
Pooling in the input's dtype gives the same values without the copies.
"""

from __future__ import annotations

import torch
from torch import nn

from ..precision import active_autocast_dtype


class MaxPool3d(nn.MaxPool3d):
    """:class:`torch.nn.MaxPool3d` that pools in the input's dtype under autocast (module docstring)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if active_autocast_dtype(input.device.type) is None:
            return super().forward(input)
        with torch.autocast(input.device.type, enabled=False):
            return super().forward(input)
