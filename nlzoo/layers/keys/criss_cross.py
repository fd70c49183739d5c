"""Criss-cross keys (Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019 / TPAMI
2020, arXiv 1811.11721): each position attends to the positions on its own row and column (and, in 3D, its own
time line), with one softmax over all of them.

Semantics as mmcv's ``CrissCrossAttention`` (``mmcv/ops/cc_attention.py``): the logits along the column carry
``-inf`` on the query's own position so that it counts once, and the softmax runs over the concatenation of the
column and row logits; mmsegmentation's CCHead applies the module ``recurrence=2`` times (shared weights), which
gives every position a path to every other in 2D. In 3D one pass covers the query's three lines, so two
passes reach only positions that differ from it in at most two of (t, h, w); three passes reach all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...errors import ConfigError
from .base import Keys, register_keys

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock


@register_keys("criss_cross")
class CrissCrossKeys(Keys):
    """Keys on the query's axis lines: H + W - 1 of them in 2D, T + H + W - 2 in 3D.

    Exact two-pass (one pass per axis) evaluation: the logits of each axis are one batched product,
    (B, ..., L, L) for an axis of length L, so the block holds N (H + W) logits in 2D, as mmcv's pure-PyTorch
    form, and never the N x N masked map of the straightforward formula. The passes share one softmax: a common
    shift (the maximum over all axes, detached: the softmax does not depend on it) and one sum of the
    exponentials over all axes, which is the softmax over the union exactly.

    Args:
        recurrence: how many times the block is applied (weights shared); 2 in CCNet.
    """

    min_dims = 2
    supports_temporal_groups = False

    def __init__(self, *, recurrence: int = 1) -> None:
        if not isinstance(recurrence, int) or recurrence < 1:
            raise ConfigError(f"recurrence must be a positive int (CCNet uses 2); got {recurrence!r}")
        self.repeats = recurrence

    def build(self, block: NonLocalBlock) -> None:
        if not block.pairwise.plain_softmax:
            raise ConfigError(
                f"criss-cross keys combine per-axis passes of a plain softmax; instantiation "
                f"{block.instantiation!r} is not one: use 'embedded_gaussian' or 'gaussian'"
            )

    def attend(self, block: NonLocalBlock, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scale = block.pairwise.softmax_scale
        axes = q.dim() - 2
        qc, kc, vc = (t.movedim(1, -1) for t in (q, k, v))  # (B, *grid, E)
        logits = []
        for i in range(axes):
            axis = 1 + i
            e = scale * (qc.movedim(axis, -2) @ kc.movedim(axis, -2).transpose(-1, -2))  # (B, *others, L, L)
            if i < axes - 1:  # the query's own position is counted on the last axis only
                length = e.shape[-1]
                e = e + torch.zeros(length, length, dtype=e.dtype, device=e.device).fill_diagonal_(float("-inf"))
            logits.append(e)
        shift = torch.stack([e.amax(-1).movedim(-1, 1 + i) for i, e in enumerate(logits)]).amax(0).detach()
        y = total = None
        for i, e in enumerate(logits):
            axis = 1 + i
            p = torch.exp(e - shift.movedim(axis, -1).unsqueeze(-1))
            part = (p @ vc.movedim(axis, -2)).movedim(-2, axis)  # (B, *grid, D)
            mass = p.sum(-1).movedim(-1, axis)  # (B, *grid)
            y, total = (part, mass) if y is None else (y + part, total + mass)
        return (y / total.unsqueeze(-1)).movedim(-1, 1)

    def affinity(
        self, block: NonLocalBlock, q: torch.Tensor, k: torch.Tensor, queries: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Weights of the first application (with ``recurrence`` > 1, later ones see the updated map)."""
        grid = tuple(q.shape[2:])
        qt = q.flatten(2).transpose(1, 2)[:, queries]
        kt = k.flatten(2).transpose(1, 2)
        logits = block.pairwise.softmax_scale * qt @ kt.transpose(1, 2)
        on_axes = axis_mask(queries, grid)
        return torch.softmax(logits.masked_fill(~on_axes, float("-inf")), dim=-1), grid

    def extra_repr(self) -> str:
        return f"recurrence={self.repeats}"


def axis_mask(queries: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """(Q, N) bool: key j lies on one of query i's axis lines (their grid coordinates differ in at most one)."""
    keys = torch.arange(torch.Size(grid).numel(), device=queries.device)
    q_coords = torch.stack(torch.unravel_index(queries, grid), dim=-1)  # (Q, dims)
    k_coords = torch.stack(torch.unravel_index(keys, grid), dim=-1)  # (N, dims)
    return (q_coords[:, None, :] != k_coords[None, :, :]).sum(-1) <= 1
