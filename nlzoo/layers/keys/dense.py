"""Keys of the paper's block: all positions, or max-pool subsampled positions (the authors' choice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..pooling import MaxPool3d
from .base import Keys, register_keys

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock

_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: MaxPool3d}
# The authors' subsampling: a max-pool over space only, never over time (Caffe2 / PySlowFast [1, 2, 2]).
SUBSAMPLE_KERNEL = {1: (2,), 2: (2, 2), 3: (1, 2, 2)}


@register_keys("all")
class AllKeys(Keys):
    """Every position of the input (within its temporal group) is a key."""


@register_keys("subsampled")
class SubsampledKeys(Keys):
    """Keys on a max-pooled grid: kernel (1,2,2) / (2,2) / 2 over the input of phi and g (the authors' code), so
    the phi/g convs and the pairwise work shrink 4x in space.

    Args:
        pool_embeddings: pool phi(x) and g(x) instead of x, as mmcv's ``NonLocalNd`` (mmaction2) does. Max-pooling
            does not commute with the 1x1 convs, so weights trained in that order need it; it costs 4x more in
            the phi/g convs.
    """

    def __init__(self, *, pool_embeddings: bool = False) -> None:
        self.pool_embeddings = bool(pool_embeddings)

    def build(self, block: NonLocalBlock) -> None:
        kernel = SUBSAMPLE_KERNEL[block.dims]
        block.pool = _POOL[block.dims](kernel, stride=kernel)

    def check_input(self, block: NonLocalBlock, x: torch.Tensor) -> None:
        kernel = SUBSAMPLE_KERNEL[block.dims]
        if any(s < k for s, k in zip(x.shape[2:], kernel, strict=True)):
            raise ValueError(
                f"subsample=True pools {kernel} but the input's positional dims are "
                f"{tuple(x.shape[2:])}; use a larger input or subsample=False"
            )

    def key_source(self, block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
        return x if self.pool_embeddings else block.pool(x)

    def pool_embedded(self, block: NonLocalBlock, t: torch.Tensor) -> torch.Tensor:
        return block.pool(t) if self.pool_embeddings else t

    def extra_repr(self) -> str:
        return "pool_embeddings=True" if self.pool_embeddings else ""
