"""Efficient attention (Shen et al., "Efficient Attention: Attention with Linear Complexities", WACV 2021,
arXiv 1812.01243): ``E(Q, K, V) = rho_q(Q) (rho_k(K)^T V)``, linear in the number of positions.

``rho_q`` is a softmax over each query's channels, ``rho_k`` a softmax over positions for each key channel, per
head (the authors' cmsflash/efficient-attention ``EfficientAttention``: keys ``softmax(dim=2)`` over positions,
queries ``softmax(dim=1)`` over channels, heads split the channels).
"""

from __future__ import annotations

import torch

from ...errors import ConfigError
from .base import PairwiseFunction, register_pairwise


@register_pairwise("efficient")
class EfficientAttention(PairwiseFunction):
    """``y = rho_q(q) (rho_k(k)^T v)`` per head, by associativity when that needs fewer multiply-adds
    (``(N + M) E D / h`` instead of ``N M (E + D)``), otherwise through the (N x M) product; both are exact.

    Args:
        embed_dim: width E of theta / phi.
        softmax_scale: not used (the normalisation is the two softmaxes).
        value_dim: width D of g.
        heads: number of heads h; must divide E and D.
    """

    def __init__(
        self, embed_dim: int, *, softmax_scale: float | None = None, value_dim: int | None = None, heads: int = 1
    ) -> None:
        super().__init__(embed_dim, softmax_scale=softmax_scale, value_dim=value_dim)
        if not isinstance(heads, int) or heads < 1:
            raise ConfigError(f"heads must be a positive int; got {heads!r}")
        for what, width in (("key width (inner/key_channels)", embed_dim), ("value width (inner_channels)", value_dim)):
            if width is not None and width % heads:
                raise ConfigError(f"heads={heads} must divide the {what} {width}; choose heads among its divisors")
        self.heads = heads

    def _normalised(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rho_q(q), rho_k(k) as (B, h, N, E/h) and (B, h, M, E/h)."""
        h = self.heads
        q = q.unflatten(-1, (h, -1)).transpose(-3, -2).softmax(dim=-1)  # over each head's channels
        k = k.unflatten(-1, (h, -1)).transpose(-3, -2).softmax(dim=-2)  # over positions
        return q, k

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        rq, rk = self._normalised(q, k)
        vh = v.unflatten(-1, (self.heads, -1)).transpose(-3, -2)  # (B, h, M, D/h)
        n, m, e, d = rq.shape[-2], rk.shape[-2], rq.shape[-1], vh.shape[-1]
        y = rq @ (rk.transpose(-1, -2) @ vh) if (n + m) * e * d <= n * m * (e + d) else rq @ rk.transpose(-1, -2) @ vh
        return y.transpose(-3, -2).flatten(-2)

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """``rho_q(q) rho_k(k)^T``, averaged over heads (each head weighs its own block of value channels)."""
        rq, rk = self._normalised(q, k)
        return (rq @ rk.transpose(-1, -2)).mean(-3)

    def extra_repr(self) -> str:
        return f"heads={self.heads}"
