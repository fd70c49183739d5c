"""Pyramid-pooled anchor keys: the asymmetric pyramid non-local block (APNB) of Zhu et al., "Asymmetric Non-local
Neural Networks for Semantic Segmentation", ICCV 2019, arXiv 1908.07678."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from .base import Keys, register_keys

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock


@register_keys("pyramid")
class PyramidKeys(Keys):
    """Keys and values are the input average-pooled to s x s cells for each scale s, concatenated: S = sum s^2
    anchors (110 for the paper's scales (1, 3, 6, 8)) instead of N positions.

    mmsegmentation's ANN head (``PPMConcat``: ``AdaptiveAvgPool2d`` per scale, flattened and concatenated) pools
    the key / value *embeddings*; averaging commutes with the affine 1x1 convs, so pooling the input first is the
    same result with the phi / g convs run on S positions instead of N (checked in the tests). In 3D each frame is
    pooled on its own (the grid keeps T, so temporal groups still apply); in 1D the sequence is pooled to s cells.
    The key grid is (1, S) in 2D and (T, 1, S) in 3D.

    Args:
        scales: the pyramid's output sizes per spatial axis.
    """

    def __init__(self, *, scales: Sequence[int] = (1, 3, 6, 8)) -> None:
        scales = tuple(scales)
        if not scales or not all(isinstance(s, int) and s >= 1 for s in scales):
            raise ConfigError(
                f"scales must be a non-empty sequence of positive ints, e.g. (1, 3, 6, 8); got {scales!r}"
            )
        self.scales = scales

    def key_source(self, block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
        if block.dims == 1:
            return torch.cat([F.adaptive_avg_pool1d(x, s) for s in self.scales], dim=-1)
        if block.dims == 2:
            return torch.cat([F.adaptive_avg_pool2d(x, s).flatten(2) for s in self.scales], dim=-1).unsqueeze(2)
        time = x.shape[2]
        pooled = [F.adaptive_avg_pool3d(x, (time, s, s)).flatten(3) for s in self.scales]
        return torch.cat(pooled, dim=-1).unsqueeze(3)

    def extra_repr(self) -> str:
        return f"scales={self.scales}"
