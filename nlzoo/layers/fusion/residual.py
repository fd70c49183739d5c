"""The paper's fusion: ``z = x + norm(W_z y)`` (Wang et al., CVPR 2018, eq. 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..convs import CONV
from .base import Fusion, register_fusion

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock

_BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


@register_fusion("residual")
class ResidualFusion(Fusion):
    """``conv_out`` (D -> C, 1x1) then ``norm`` (batch / group / none), added to the input. The norm's gamma
    (or ``conv_out`` itself without a norm) starts at zero, so a new block is the identity. A query-independent
    response (one position) is broadcast over the input's positions after ``conv_out``."""

    default_norm = "batch"

    def value_channels(self, in_channels: int, inner_channels: int, inner_given: bool) -> int:
        return inner_channels

    def build(self, block: NonLocalBlock, *, value_channels: int, norm: str | None, bias: bool) -> None:
        c = block.in_channels
        block.conv_out = CONV[block.dims](value_channels, c, 1, bias=bias)
        if norm == "batch":
            block.norm = _BATCHNORM[block.dims](c)
        elif norm == "group":
            block.norm = nn.GroupNorm(_group_count(c), c)
        else:
            block.norm = nn.Identity()

    def reset_parameters(self, block: NonLocalBlock) -> None:
        if isinstance(block.norm, nn.Identity):
            nn.init.zeros_(block.conv_out.weight)
            if block.conv_out.bias is not None:
                nn.init.zeros_(block.conv_out.bias)
        else:
            nn.init.zeros_(block.norm.weight)
            nn.init.zeros_(block.norm.bias)

    def fuse(self, block: NonLocalBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + block.norm(block.conv_out(y))


def _group_count(channels: int) -> int:
    """Largest group count <= 32 dividing ``channels`` (GroupNorm's usual 32 where possible)."""
    return next(g for g in range(min(32, channels), 0, -1) if channels % g == 0)
