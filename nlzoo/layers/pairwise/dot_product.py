"""Dot-product instantiation: ``f = theta(x_i) . phi(x_j)``, ``C = N'`` (paper eq. 4)."""

from __future__ import annotations

import torch

from .base import PairwiseFunction, register_pairwise


@register_pairwise("dot_product")
class DotProduct(PairwiseFunction):
    """``y = (q k^T / M) v``, computed as ``q (k^T v) / M`` whenever associativity needs fewer FLOPs.

    Without a softmax the product is associative, so the N x M affinity is skipped entirely:
    ``(N + M) E D`` multiply-adds instead of ``N M (E + D)``. The cheaper order is chosen per call.
    """

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n, m, e, d = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
        if (n + m) * e * d <= n * m * (e + d):
            return q @ (k.transpose(-1, -2) @ v / m)
        return (q @ k.transpose(-1, -2) / m) @ v

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return q @ k.transpose(-1, -2) / k.shape[-2]
