"""Plain, obviously-correct formulas of the non-local operation (the paper's equations, materialised).

The fast paths in nlzoo.layers are checked against these. They build the full affinity on purpose.
"""

from __future__ import annotations

import torch

from nlzoo.layers import NonLocalBlock


def pairwise_weights(block: NonLocalBlock, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """f(x_i, x_j) / C(x) for all pairs, q (B, N, E), k (B, M, E) -> (B, N, M), straight from the paper."""
    name, m = block.instantiation, k.shape[1]
    if name in ("embedded_gaussian", "gaussian"):
        f = torch.exp(block.pairwise.softmax_scale * torch.einsum("bne,bme->bnm", q, k))
        return f / f.sum(-1, keepdim=True)
    if name == "dot_product":
        return torch.einsum("bne,bme->bnm", q, k) / m
    if name == "concatenation":
        # The common implementations' (B, 2E, N, M) concat, then w^T and ReLU.
        n = q.shape[1]
        qq = q.transpose(1, 2).unsqueeze(-1).expand(-1, -1, n, m)
        kk = k.transpose(1, 2).unsqueeze(-2).expand(-1, -1, n, m)
        cat = torch.cat([qq, kk], dim=1)
        return torch.relu(torch.einsum("becm,e->bcm", cat, block.pairwise.weight)) / m
    raise NotImplementedError(name)


def reference_forward(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """z = norm(W_z y) + x with y from the materialised weights, one temporal group at a time."""
    xp = block.pool(x) if block.pool is not None else x
    theta = block.conv_theta(x) if block.conv_theta is not None else x
    phi = block.conv_phi(xp) if block.conv_phi is not None else xp
    g = block.conv_g(xp)
    groups = block.temporal_groups
    ys = []
    for th, ph, gg in zip(theta.chunk(groups, 2), phi.chunk(groups, 2), g.chunk(groups, 2), strict=True):
        q, k, v = (t.flatten(2).transpose(1, 2) for t in (th, ph, gg))
        w = pairwise_weights(block, q, k)
        ys.append((w @ v).transpose(1, 2).reshape(th.shape[0], -1, *th.shape[2:]))
    y = torch.cat(ys, dim=2)
    return x + block.norm(block.conv_out(y))
