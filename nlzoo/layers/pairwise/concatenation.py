"""Concatenation instantiation: ``f = ReLU(w^T [theta(x_i); phi(x_j)])``, ``C = N'`` (paper eq. 5)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import PairwiseFunction, register_pairwise


@register_pairwise("concatenation")
class Concatenation(PairwiseFunction):
    """Exact ``O((N + M) D)`` evaluation by sorting, instead of the usual (B, 2E, N, M) tensor.

    Splitting ``w = [w_q; w_k]`` gives ``f_ij = ReLU(a_i + b_j)`` with ``a = q w_q`` and ``b = k w_k``. For a
    query, the keys with ``b_j > -a_i`` form a prefix of the keys sorted by ``b`` (descending), so

        y_i = (a_i * S_v[c_i] + S_bv[c_i]) / M,

    where ``S_v`` and ``S_bv`` are prefix sums of ``v_j`` and ``b_j v_j`` in that order and ``c_i`` counts the
    keys with ``b_j > -a_i`` (a binary search). Gradients flow through the prefix sums and gathers; the
    sort order is piecewise constant, exactly like ReLU's kink. Prefix sums run in float32 or wider.

    Parameter: ``weight`` (2E,), the paper's ``w_f`` (first half multiplies theta, second half phi).
    """

    def __init__(self, embed_dim: int, *, softmax_scale: float | None = None, value_dim: int | None = None) -> None:
        super().__init__(embed_dim, softmax_scale=softmax_scale, value_dim=value_dim)
        self.weight = nn.Parameter(torch.empty(2 * embed_dim))
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / (2 * embed_dim)))

    def _project(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w_q, w_k = self.weight.to(q.dtype).split(self.embed_dim)
        return q @ w_q, k @ w_k

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out_dtype = v.dtype
        acc = torch.promote_types(v.dtype, torch.float32)
        a, b = (t.to(acc) for t in self._project(q, k))  # (B, N), (B, M)
        m = k.shape[-2]
        b_sorted, order = b.sort(dim=-1, descending=True)
        v_sorted = v.to(acc).gather(-2, order.unsqueeze(-1).expand(-1, -1, v.shape[-1]))
        zero_row = v_sorted.new_zeros(v.shape[0], 1, v.shape[-1])
        s_v = torch.cat([zero_row, v_sorted.cumsum(-2)], dim=-2)  # (B, M+1, D): sum of the top-c values
        s_bv = torch.cat([zero_row, (b_sorted.unsqueeze(-1) * v_sorted).cumsum(-2)], dim=-2)
        # c_i = #{j : b_j > -a_i}; searchsorted wants ascending order, so search -b for values < a_i.
        count = torch.searchsorted((-b_sorted).contiguous(), a.contiguous(), side="left")  # (B, N)
        index = count.unsqueeze(-1).expand(-1, -1, v.shape[-1])
        y = (a.unsqueeze(-1) * s_v.gather(-2, index) + s_bv.gather(-2, index)) / m
        return y.to(out_dtype)

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        a, b = self._project(q, k)
        return torch.relu(a.unsqueeze(-1) + b.unsqueeze(-2)) / k.shape[-2]
