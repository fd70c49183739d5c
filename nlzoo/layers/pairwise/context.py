"""GCNet's query-independent context (Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and
Beyond", ICCVW 2019, arXiv 1904.11492, eq. 3-4): one attention map shared by every query."""

from __future__ import annotations

import torch

from .base import PairwiseFunction, register_pairwise


@register_pairwise("context")
class QueryIndependentContext(PairwiseFunction):
    """``f(x_i, x_j) = exp(W_k x_j)``, ``C = sum_j f``: the weights do not depend on the query, so the response
    ``sum_j softmax_j(W_k x_j) v_j`` is one vector per sample, computed in O(M D) (never N x M).

    Keys k (B, M, 1) are the logits ``W_k x_j`` (phi is C -> 1, mmcv's ``conv_mask``); queries are unused;
    ``forward`` returns (B, 1, D), which the block broadcasts over the query positions.
    """

    query_independent = True

    @classmethod
    def key_channels(cls, embed_dim: int) -> int:
        return 1

    def forward(self, q: torch.Tensor | None, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.softmax(k[..., 0], dim=-1).unsqueeze(-2) @ v

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.softmax(k[..., 0], dim=-1).unsqueeze(-2).expand(-1, q.shape[-2], -1)
