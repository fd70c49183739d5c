"""GCNet's fusion (Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", ICCVW
2019, arXiv 1904.11492): a bottleneck transform of the context vector, added to and / or multiplied into every
position.

Semantics and module names as mmcv's ``ContextBlock`` (``mmcv/cnn/bricks/context_block.py``):
``channel_add_conv`` / ``channel_mul_conv`` = 1x1 conv C -> C*ratio, ``LayerNorm([C*ratio, 1, 1])``, ReLU,
1x1 conv back to C; output ``x * sigmoid(channel_mul_conv(ctx))`` then ``+ channel_add_conv(ctx)``; the last conv
of each transform is zero-initialised (``last_zero_init``). With ``channel_add`` alone a new block is therefore
the identity; ``channel_mul`` starts at ``x * sigmoid(0) = x / 2`` (as in mmcv: the paper's formula cannot start
as the identity there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ...errors import ConfigError
from ..convs import CONV
from .base import Fusion, register_fusion

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock

FUSION_TYPES = ("channel_add", "channel_mul")


@register_fusion("gc")
class GlobalContextFusion(Fusion):
    """Transforms the query-independent context (B, C, 1, ...) and fuses it into every position: O(C^2 ratio)
    per sample, on top of the context's O(N C).

    Args:
        ratio: bottleneck width as a fraction of C (GCNet's r = 16 is 1/16; mmdetection's "r4" configs 1/4).
        fusion_types: any of ``"channel_add"``, ``"channel_mul"``.
    """

    needs_query_independent = True

    def __init__(self, *, ratio: float = 1 / 4, fusion_types: Sequence[str] = ("channel_add",)) -> None:
        types = (fusion_types,) if isinstance(fusion_types, str) else tuple(fusion_types)
        unknown = [t for t in types if t not in FUSION_TYPES]
        if not types or unknown or len(set(types)) != len(types):
            raise ConfigError(f"fusion_types must be a non-empty set of {FUSION_TYPES}; got {fusion_types!r}")
        if not 0 < ratio <= 1:
            raise ConfigError(f"ratio must be in (0, 1] (the bottleneck's width as a fraction of C); got {ratio!r}")
        self.ratio, self.fusion_types = float(ratio), types

    def value_channels(self, in_channels: int, inner_channels: int, inner_given: bool) -> None:
        if inner_given:
            raise ConfigError(
                "fusion 'gc' pools the raw input (there is no g conv); set the bottleneck with fusion_args "
                "{'ratio': ...} instead of inner_channels"
            )
        return None

    def build(self, block: NonLocalBlock, *, value_channels: int, norm: str | None, bias: bool) -> None:
        c, dims = block.in_channels, block.dims
        planes = int(c * self.ratio)
        if planes < 1:
            raise ConfigError(f"ratio={self.ratio:g} leaves no bottleneck channels for C={c}; use a larger ratio")
        conv = CONV[dims]
        for kind in self.fusion_types:
            transform = nn.Sequential(
                conv(c, planes, 1), nn.LayerNorm([planes, *(1,) * dims]), nn.ReLU(), conv(planes, c, 1)
            )
            setattr(block, f"{kind}_conv", transform)

    def reset_parameters(self, block: NonLocalBlock) -> None:
        for kind in self.fusion_types:
            transform = getattr(block, f"{kind}_conv")
            transform[0].reset_parameters()
            transform[1].reset_parameters()
            nn.init.zeros_(transform[-1].weight)
            nn.init.zeros_(transform[-1].bias)

    def fuse(self, block: NonLocalBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = x
        if "channel_mul" in self.fusion_types:
            out = out * torch.sigmoid(block.channel_mul_conv(y))
        if "channel_add" in self.fusion_types:
            out = out + block.channel_add_conv(y)
        return out

    def extra_repr(self) -> str:
        return f"ratio={self.ratio:g}, fusion_types={self.fusion_types}"
