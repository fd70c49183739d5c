"""Straightforward formulas of the family's papers, materialised (N x N maps, explicit loops over heads and
scales). The exact fast paths of nlzoo.layers are checked against these; they read only the block's parameters.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from nlzoo.layers import NonLocalBlock


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(B, C, *grid) -> (B, N, C)."""
    return t.flatten(2).transpose(1, 2)


def _unflat(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return y.transpose(1, 2).reshape(y.shape[0], y.shape[2], *like.shape[2:])


def gc(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """GCNet eq. 4 / mmcv ContextBlock: context = sum_j softmax_j(W_k x_j) x_j, then mul and add transforms."""
    logits = _flat(block.conv_phi(x))[..., 0]  # (B, N)
    weights = torch.exp(logits - logits.max(1, keepdim=True).values)
    weights = weights / weights.sum(1, keepdim=True)
    context = torch.einsum("bn,bnc->bc", weights, _flat(x)).reshape(x.shape[0], -1, *(1,) * (x.dim() - 2))
    out = x
    if "channel_mul" in block.fusion_part.fusion_types:
        out = out * torch.sigmoid(block.channel_mul_conv(context))
    if "channel_add" in block.fusion_part.fusion_types:
        out = out + block.channel_add_conv(context)
    return out


def dnl(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """DNL (mmseg DisentangledNonLocal2d): whitened theta / phi, scale / temperature, plus the unary term."""
    e = block.conv_theta.out_channels
    theta = _flat(block.conv_theta(x))
    phi_all = _flat(block.conv_phi(x))
    phi, mask = phi_all[..., :e], phi_all[..., e]
    theta = theta - theta.mean(1, keepdim=True)
    phi = phi - phi.mean(1, keepdim=True)
    scale = e**-0.5 / block.pairwise.temperature  # mmseg: use_scale, then / temperature
    g = _flat(block.conv_g(x))
    pairwise = torch.softmax(scale * torch.einsum("bne,bme->bnm", theta, phi), dim=-1) @ g
    unary = torch.softmax(mask, dim=-1).unsqueeze(1) @ g
    return x + block.norm(block.conv_out(_unflat(pairwise + unary, x)))


def ann(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """APNB keys as mmseg's PPMConcat: the key / value *embeddings* average-pooled per scale and concatenated."""
    scales = block.keys_part.scales

    def pyramid(t: torch.Tensor) -> torch.Tensor:  # (B, C, *grid) -> (B, S, C), per frame in 3D
        if t.dim() == 3:
            return torch.cat([F.adaptive_avg_pool1d(t, s) for s in scales], -1).transpose(1, 2)
        if t.dim() == 4:
            return torch.cat([F.adaptive_avg_pool2d(t, s).flatten(2) for s in scales], -1).transpose(1, 2)
        frames = [
            torch.cat([F.adaptive_avg_pool2d(t[:, :, i], s).flatten(2) for s in scales], -1) for i in range(t.shape[2])
        ]
        return torch.cat(frames, -1).transpose(1, 2)

    q, k, v = _flat(block.conv_theta(x)), pyramid(block.conv_phi(x)), pyramid(block.conv_g(x))
    y = torch.softmax(block.pairwise.softmax_scale * q @ k.transpose(1, 2), dim=-1) @ v
    return x + block.norm(block.conv_out(_unflat(y, x)))


def criss_cross_mask(grid: tuple[int, ...]) -> torch.Tensor:
    """(N, N): j is on i's row / column (/ time line): their coordinates differ in at most one axis."""
    coords = torch.tensor(list(itertools.product(*(range(s) for s in grid))))  # (N, dims), row-major
    return (coords[:, None, :] != coords[None, :, :]).sum(-1) <= 1


def criss_cross(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """CCNet: softmax over the H + W - 1 positions of the query's row and column (the N x N masked map), then
    x + gamma * y, repeated ``recurrence`` times with the same weights."""
    mask = criss_cross_mask(tuple(x.shape[2:]))
    for _ in range(block.keys_part.repeats):
        q, k, v = _flat(block.conv_theta(x)), _flat(block.conv_phi(x)), _flat(block.conv_g(x))
        logits = block.pairwise.softmax_scale * q @ k.transpose(1, 2)
        w = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
        x = x + block.gamma * _unflat(w @ v, x)
    return x


def efficient(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """Efficient attention, the (N x M) order: rho_q(Q) rho_k(K)^T V head by head."""
    q, k, v = _flat(block.conv_theta(x)), _flat(block.conv_phi(x)), _flat(block.conv_g(x))
    h = block.pairwise.heads
    outs = []
    for qh, kh, vh in zip(q.chunk(h, -1), k.chunk(h, -1), v.chunk(h, -1), strict=True):
        outs.append((qh.softmax(-1) @ kh.softmax(1).transpose(1, 2)) @ vh)
    return x + block.norm(block.conv_out(_unflat(torch.cat(outs, -1), x)))


REFERENCES = {"gc": gc, "dnl": dnl, "ann_apnb": ann, "criss_cross": criss_cross, "efficient": efficient}
