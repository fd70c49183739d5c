"""Disentangled non-local (Yin et al., "Disentangled Non-Local Neural Networks", ECCV 2020, arXiv 2006.06668).

The embedded Gaussian split into a whitened pairwise term and a unary term:
``y_i = sum_j softmax_j((q_i - mu_q) . (k_j - mu_k) * s / tau) v_j + sum_j softmax_j(W_m x_j) v_j``, with the means
taken over positions. Semantics as mmsegmentation's ``DisentangledNonLocal2d`` (``decode_heads/dnl_head.py``):
theta's mean over query positions and phi's over key positions are subtracted, the logits are scaled by
``inner ** -0.5`` (``use_scale``) and divided by the temperature (0.05), and the unary map ``conv_mask`` (C -> 1)
is a softmax over positions whose weighted sum of g is added to the pairwise response before ``conv_out``.
"""

from __future__ import annotations

import torch

from ...errors import ConfigError
from .base import PairwiseFunction, register_pairwise
from .softmax import softmax_affinity, softmax_attention


@register_pairwise("disentangled")
class Disentangled(PairwiseFunction):
    """Whitened embedded Gaussian plus the unary term.

    phi has one extra output channel, the unary logit ``W_m x_j`` (mmseg's ``conv_mask`` is that row of phi), so
    keys are (B, M, E + 1). The pairwise term runs through the same exact softmax paths as the embedded Gaussian
    (fused or direct, by cost); the unary term costs O(M D).

    Args:
        embed_dim: width E of theta / phi.
        softmax_scale: ``s``; default ``E ** -0.5`` (mmseg's ``use_scale=True``).
        value_dim: width of g (unused here).
        temperature: ``tau``; the logits are divided by it (mmseg and the authors: 0.05).
    """

    uses_softmax_scale = True

    def __init__(
        self,
        embed_dim: int,
        *,
        softmax_scale: float | None = None,
        value_dim: int | None = None,
        temperature: float = 0.05,
    ) -> None:
        super().__init__(embed_dim, softmax_scale=softmax_scale, value_dim=value_dim)
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0; got {temperature!r}")
        self.temperature = float(temperature)
        base = embed_dim**-0.5 if softmax_scale is None else float(softmax_scale)
        self.softmax_scale = base / self.temperature

    @classmethod
    def key_channels(cls, embed_dim: int) -> int:
        return embed_dim + 1

    def prepare(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pair, unary = k[..., :-1], k[..., -1:]
        return q - q.mean(-2, keepdim=True), torch.cat([pair - pair.mean(-2, keepdim=True), unary], dim=-1)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        pairwise = softmax_attention(q, k[..., :-1], v, self.softmax_scale)
        unary = torch.softmax(k[..., -1], dim=-1).unsqueeze(-2) @ v  # (B, 1, D), the same for every query
        return pairwise + unary

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Pairwise plus unary weights; each row sums to 2 (one softmax each)."""
        pairwise = softmax_affinity(q, k[..., :-1], self.softmax_scale)
        return pairwise + torch.softmax(k[..., -1], dim=-1).unsqueeze(-2)

    def extra_repr(self) -> str:
        return f"softmax_scale={self.softmax_scale:.4g}, temperature={self.temperature:g}"
