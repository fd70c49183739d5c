"""Softmax instantiations: embedded Gaussian (the paper's default, self-attention) and plain Gaussian.

Both compute ``y_i = sum_j softmax_j(s * q_i . k_j) v_j`` through
:func:`torch.nn.functional.scaled_dot_product_attention`, whose fused kernels (CPU flash, CUDA
flash / memory-efficient) never hold the N x M affinity in memory -- unless that affinity is no larger than
q, k and v themselves (N M <= (N + M) d), where two plain matmuls are faster at the same memory bound.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import PairwiseFunction, register_pairwise


class _SoftmaxPairwise(PairwiseFunction):
    uses_softmax_scale = True

    def __init__(self, embed_dim: int, *, softmax_scale: float | None = None) -> None:
        super().__init__(embed_dim, softmax_scale=softmax_scale)
        self.softmax_scale = self.default_scale(embed_dim) if softmax_scale is None else float(softmax_scale)

    @staticmethod
    def default_scale(embed_dim: int) -> float:
        raise NotImplementedError

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n, m, e, d = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
        if n * m <= (n + m) * max(e, d):
            # The affinity is no larger than the embeddings themselves (few positions, wide channels, e.g. res4):
            # plain matmuls are the faster exact form there and the memory stays O((N + M) d).
            return torch.softmax(self.softmax_scale * (q @ k.transpose(-1, -2)), dim=-1) @ v
        # Fused kernels need one head dim for q, k and v; zero-padding the narrower side is exact
        # (zeros add nothing to q.k and produce output columns we drop).
        if e < d:
            q, k = F.pad(q, (0, d - e)), F.pad(k, (0, d - e))
        elif d < e:
            v = F.pad(v, (0, e - d))
        # (B, 1, N, E) contiguous: a strided view silently drops CPU SDPA to the materialising math path.
        q, k, v = (t.unsqueeze(1).contiguous() for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, scale=self.softmax_scale)
        return y.squeeze(1)[..., :d]

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.softmax_scale * q @ k.transpose(-1, -2), dim=-1)

    def extra_repr(self) -> str:
        return f"softmax_scale={self.softmax_scale:.4g}"


@register_pairwise("embedded_gaussian")
class EmbeddedGaussian(_SoftmaxPairwise):
    """``f = exp(s * theta(x_i) . phi(x_j))``, ``C = sum_j f`` (paper eq. 3): a softmax over key positions.

    ``s`` defaults to ``embed_dim ** -0.5`` as in the authors' Caffe2 code and PySlowFast; use
    ``softmax_scale=1.0`` for weights trained with mmaction2's I3D-NL configs (``use_scale=False``).
    """

    @staticmethod
    def default_scale(embed_dim: int) -> float:
        return embed_dim**-0.5


@register_pairwise("gaussian")
class Gaussian(_SoftmaxPairwise):
    """``f = exp(s * x_i . x_j)`` on the raw input, no theta/phi embedding (paper eq. 2).

    ``s`` defaults to 1, the paper's formula exactly.
    """

    embeds = False

    @staticmethod
    def default_scale(embed_dim: int) -> float:
        return 1.0
