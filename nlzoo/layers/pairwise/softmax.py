"""Softmax instantiations: embedded Gaussian (the paper's default, self-attention) and plain Gaussian.

Both compute ``y_i = sum_j softmax_j(s * q_i . k_j) v_j`` by one of two exact paths, chosen per call by
:func:`materialise_affinity`, a cost model:

* fused: :func:`torch.nn.functional.scaled_dot_product_attention`, whose kernels (CPU flash, CUDA flash /
  memory-efficient) never hold the N x M affinity. They need one head width for q, k and v, so the narrower
  side is zero-padded: for the plain Gaussian (q, k = the input, C wide; v = g(x), C/2 wide) that doubles the
  value product, and the fused path does 4/3 the multiply-adds of the direct one;
* direct: ``softmax(s q k^T) v`` with the affinity in memory (the common implementations' form).

Direct is chosen where the affinity is no larger than q, k and v themselves (few positions, e.g. res4), or, on
CPU, where the affinity stays within ``AFFINITY_MEMORY_FACTOR`` times the embeddings' size (so the block's
memory stays within a constant factor of the fused path's) *and* direct is faster: in fp32 where it needs fewer
operations than the padded fused kernel; in bf16 on CPUs with bf16 instructions always. CPU flash attention
runs bf16 in small blocks with fp32 softmax arithmetic and gained nothing over fp32 (AMD EPYC Zen 5, res3
4x28x28 over pooled keys: 15.8 ms bf16, 16.2 ms fp32), while the direct path's two products are whole bf16
GEMMs: 4.0 ms, and 1.8-4.4x faster than fused forward and backward at every shape measured. With AMX, CPU
flash attention runs its bf16 blocks on the tiles, and at inference it is the faster path beyond the first case
(Intel Xeon, attention alone at batch 2: res3 3136 x 784 keys, width 256, 4.6 ms fused vs 9.2 ms direct,
1.06-3.7x at every such shape measured; a whole res3 block of c2d_r50_nl on a 32-frame clip, 12544 x 3136:
39 vs 65 ms, at 8 frames within 5%), while forward and backward it is not (0.70-0.89x at mid sizes, 1.13-1.6x
only for the largest affinities): so under AMX the fused kernel is taken for inference, direct for training.
fp16 on CPUs
without fp16 matrix instructions always takes the fused kernel: PyTorch's CPU fp16 products are 30x slower
there (res4 784 x 784 keys: 332 ms direct, 11 ms fused); with them it keeps the fp32 rule.
On CUDA the fused kernels are used beyond the first case (their speed there comes from not touching the
affinity in memory; this rule was measured on CPU only).

On CPU (fp32, fp64) the direct path sets every score more than :data:`UNDERFLOW_LOGIT` below its row's maximum
to -inf before the softmax, so that those weights are exactly 0 and no weight is a subnormal float. The plain
Gaussian's raw x_i . x_j spread far: over pooled keys at res3, 12% of its fp32 weights were subnormal, and Intel
cores take a microcode assist on every subnormal operand in the products that follow, forward and backward
(where w * (dL/dw - ...) underflows too). On an Intel Xeon that made the pooled res3 block 10x slower than with
subnormals flushed to zero; the mask gets the same speed without touching the process's floating-point state.
Every weight kept is at least e^-64 / M = 1.6e-28 / M, and those dropped add up to at most M * 1.6e-28 of
the row's total, far below float rounding. The softmax's backward gives exactly 0 gradient where a weight is 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...precision import active_autocast_dtype, cpu_has_amx_bf16, cpu_has_bf16, cpu_has_fp16
from .base import PairwiseFunction, register_pairwise

# The direct path's softmax (exp, sums, division, and their backward) per affinity element, in multiply-adds of
# a matrix product: elementwise work runs far below GEMM speed. Measured on an AMD EPYC (Zen 4), fp32, torch
# 2.14: with it, the plain Gaussian (e = 2d, d = 128..256) goes direct and the embedded Gaussian (e = d) fused.
SOFTMAX_COST_MACS = 64
# The direct path may hold an affinity up to this many times the size of q, k and v together.
AFFINITY_MEMORY_FACTOR = 8
# On CPU, scores this far below their row's maximum get weight exactly 0 (e^-64 = 1.6e-28; module docstring).
UNDERFLOW_LOGIT = 64.0


def materialise_affinity(
    n: int,
    m: int,
    e: int,
    d: int,
    device_type: str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    backward: bool | None = None,
) -> bool:
    """Whether the direct (affinity in memory) path is the faster exact choice for N queries, M keys, q/k width
    ``e`` and value width ``d`` in ``dtype``, for a forward pass that autograd records (``backward``; default:
    whether grad mode is on). See the module docstring for the model."""
    if device_type == "cpu" and dtype == torch.float16 and not cpu_has_fp16():
        return False
    embeddings = (n + m) * max(e, d)
    if n * m <= embeddings:
        return True
    if device_type != "cpu" or n * m > AFFINITY_MEMORY_FACTOR * (n + m) * (e + d):
        return False
    if dtype == torch.bfloat16 and cpu_has_bf16():
        return (torch.is_grad_enabled() if backward is None else backward) or not cpu_has_amx_bf16()
    fused_macs = n * m * (e + max(e, d))  # the narrower side is zero-padded to the wider one
    direct_macs = n * m * (e + d + SOFTMAX_COST_MACS)
    return direct_macs < fused_macs


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(scale * q k^T) v`` for q (B, N, E), k (B, M, E), v (B, M, D), by the path the cost model picks."""
    n, m, e, d = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    # Under autocast the products run in its dtype whatever q's own (the plain Gaussian's q is the block input).
    dtype = active_autocast_dtype(q.device.type) or q.dtype
    if materialise_affinity(n, m, e, d, q.device.type, dtype):
        return direct_attention(q, k, v, scale)
    return fused_attention(q, k, v, scale)


def direct_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """The affinity in memory: two matrix products and a softmax."""
    return softmax_affinity(q, k, scale) @ v


def softmax_affinity(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(scale * q k^T)`` over keys for q (B, N, E), k (B, M, E); on CPU in fp32/fp64 without subnormal
    weights (module docstring).

    The mask is written into the fresh score tensor without autograd, as two in-place passes: subtracting the
    row maximum (the softmax is shift-invariant) and a threshold. Nothing saved for backward reads the scores,
    and the softmax's own backward gives 0 where the weights are 0, so the mask needs no copy and no saved
    boolean. Half-precision scores are left alone: CPU bf16 products (AVX512-BF16, AMX) read subnormals as 0
    already, and a threshold computed in bf16 could round up to the row maximum.
    """
    # The scale rides in the product (baddbmm's alpha) instead of costing a pass over the N x M scores.
    scores = torch.baddbmm(q.new_zeros(()), q, k.transpose(-1, -2), beta=0.0, alpha=scale)
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        with torch.no_grad():
            scores.sub_(scores.amax(dim=-1, keepdim=True))
            F.threshold_(scores, -UNDERFLOW_LOGIT, float("-inf"))
    return torch.softmax(scores, dim=-1)


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """SDPA's fused kernels; zero-padding the narrower of (q, k) and v is exact (zeros add nothing to q.k and
    produce output columns that are dropped)."""
    e, d = q.shape[-1], v.shape[-1]
    if e < d:
        q, k = F.pad(q, (0, d - e)), F.pad(k, (0, d - e))
    elif d < e:
        v = F.pad(v, (0, e - d))
    # (B, 1, N, E) contiguous: a strided view silently drops CPU SDPA to the materialising math path.
    q, k, v = (t.unsqueeze(1).contiguous() for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, scale=scale).squeeze(1)[..., :d]


class _SoftmaxPairwise(PairwiseFunction):
    uses_softmax_scale = True
    plain_softmax = True

    def __init__(self, embed_dim: int, *, softmax_scale: float | None = None, value_dim: int | None = None) -> None:
        super().__init__(embed_dim, softmax_scale=softmax_scale, value_dim=value_dim)
        self.softmax_scale = self.default_scale(embed_dim) if softmax_scale is None else float(softmax_scale)

    @staticmethod
    def default_scale(embed_dim: int) -> float:
        raise NotImplementedError

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return softmax_attention(q, k, v, self.softmax_scale)

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return softmax_affinity(q, k, self.softmax_scale)

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
