"""CCNet's fusion: ``z = x + gamma * y`` with a learnt scalar gamma starting at 0 (mmcv ``CrissCrossAttention``:
``gamma = Scale(0.)``, values from a C -> C conv, no output conv)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ...errors import ConfigError
from .base import Fusion, register_fusion

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock


@register_fusion("scaled")
class ScaledFusion(Fusion):
    """Adds ``gamma * y`` to the input; g keeps the full width C (there is no ``conv_out``). Parameter ``gamma``
    (shape (1,)), zero at init, so a new block (and its recurrence) is the identity."""

    def value_channels(self, in_channels: int, inner_channels: int, inner_given: bool) -> int:
        if inner_given and inner_channels != in_channels:
            raise ConfigError(
                f"fusion 'scaled' adds g(x) to the input, so g is C={in_channels} wide; got "
                f"inner_channels={inner_channels}. Leave inner_channels unset (key_channels sets theta/phi's width)"
            )
        return in_channels

    def build(self, block: NonLocalBlock, *, value_channels: int, norm: str | None, bias: bool) -> None:
        block.gamma = nn.Parameter(torch.zeros(1))

    def reset_parameters(self, block: NonLocalBlock) -> None:
        with torch.no_grad():
            block.gamma.zero_()

    def fuse(self, block: NonLocalBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + block.gamma.to(y.dtype) * y
