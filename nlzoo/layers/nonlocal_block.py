"""The non-local block (Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018, arXiv 1711.07971).

One class covers time (B, C, L), space (B, C, H, W) and spacetime (B, C, T, H, W) inputs, every registered
pairwise function, subsampled keys, and temporal grouping. Module names follow PySlowFast / pytorchvideo
(``conv_theta``, ``conv_phi``, ``conv_g``, ``conv_out``, ``norm``) so published weights map by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .pairwise import PairwiseFunction, get_pairwise

NormKind = Literal["batch", "group", "none"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
# The authors' subsampling: a max-pool over space only, never over time (Caffe2 / PySlowFast [1, 2, 2]).
_SUBSAMPLE_KERNEL = {1: (2,), 2: (2, 2), 3: (1, 2, 2)}


class NonLocalBlock(nn.Module):
    """``z = norm(W_z y) + x`` with ``y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)``.

    ::

        x ─┬────────────────────────────────────────────────────────────────┐
           ├─ conv_theta (1x1) ─────────────── q ─┐                         │
           ├─ [max-pool] ─┬─ conv_phi (1x1) ── k ─┼─ pairwise f, 1/C ── y ─ conv_out (1x1) ─ norm(γ=0) ─(+)─ z
           │              └─ conv_g   (1x1) ── v ─┘
        (the plain Gaussian has no theta/phi: q = x, k = pooled x)

    A new block is an exact identity (the norm's gamma, or ``conv_out`` without a norm, starts at zero), so it
    can be dropped into a pretrained network without changing its outputs.

    Args:
        in_channels: channels C of the input (and output).
        dims: positional dims of the input: 1 (B, C, L), 2 (B, C, H, W) or 3 (B, C, T, H, W).
        inner_channels: width d of theta, phi and g; default C // 2 (the paper's bottleneck).
        instantiation: a registered pairwise function (see :func:`nlzoo.layers.list_pairwise`).
        softmax_scale: scale inside the softmax forms; ``None`` means the instantiation's default
            (``d ** -0.5`` for embedded Gaussian, as the authors' code; 1 for Gaussian). 1.0 matches mmaction2.
        subsample: max-pool the input of phi and g (kernel (1,2,2) / (2,2) / 2, the authors' choice),
            cutting the key positions, the phi/g convs and the pairwise work by 4 in space.
        pool_embeddings: with ``subsample``, pool the outputs phi(x) and g(x) instead of x, as mmcv's
            ``NonLocalNd`` (mmaction2) does. Max-pooling does not commute with the 1x1 convs, so weights
            trained in that order need it; it costs 4x more in the phi/g convs.
        norm: ``"batch"`` (default), ``"group"`` or ``"none"`` after ``conv_out``.
        temporal_groups: run the pairwise step within this many equal groups of frames (the authors'
            grouping for long clips); 1 means all positions attend to all.
        bias: whether theta, phi, g and ``conv_out`` have biases (they do in the authors' code).

    Raises:
        ValueError: for invalid sizes, or inputs of the wrong rank, channels, dtype or spatial size.
        KeyError: for an unknown instantiation.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        dims: int = 3,
        inner_channels: int | None = None,
        instantiation: str = "embedded_gaussian",
        softmax_scale: float | None = None,
        subsample: bool = True,
        pool_embeddings: bool = False,
        norm: NormKind = "batch",
        temporal_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if dims not in _CONV:
            raise ValueError(f"dims must be 1 (B,C,L), 2 (B,C,H,W) or 3 (B,C,T,H,W); got {dims!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int; got {in_channels!r}")
        inner = in_channels // 2 if inner_channels is None else inner_channels
        if not isinstance(inner, int) or inner < 1:
            raise ValueError(
                f"inner_channels must be a positive int; got {inner!r}"
                + (f" (the default C // 2 for in_channels={in_channels})" if inner_channels is None else "")
            )
        if not isinstance(temporal_groups, int) or temporal_groups < 1:
            raise ValueError(f"temporal_groups must be a positive int; got {temporal_groups!r}")
        if temporal_groups > 1 and dims == 2:
            raise ValueError("temporal_groups needs a time axis: use dims=3 (B,C,T,H,W) or dims=1 (B,C,L)")
        if norm not in ("batch", "group", "none"):
            raise ValueError(f"norm must be 'batch', 'group' or 'none'; got {norm!r}")
        if pool_embeddings and not subsample:
            raise ValueError("pool_embeddings=True chooses where subsampling pools; it needs subsample=True")

        pairwise_cls = get_pairwise(instantiation)
        conv = _CONV[dims]
        self.in_channels, self.inner_channels, self.dims = in_channels, inner, dims
        self.instantiation, self.temporal_groups, self.subsample = instantiation, temporal_groups, subsample
        self.pool_embeddings = pool_embeddings
        embed_dim = inner if pairwise_cls.embeds else in_channels
        self.pairwise: PairwiseFunction = pairwise_cls(embed_dim, softmax_scale=softmax_scale)
        if pairwise_cls.embeds:
            self.conv_theta = conv(in_channels, inner, 1, bias=bias)
            self.conv_phi = conv(in_channels, inner, 1, bias=bias)
        else:
            self.conv_theta = self.conv_phi = None
        self.conv_g = conv(in_channels, inner, 1, bias=bias)
        self.pool = _POOL[dims](_SUBSAMPLE_KERNEL[dims], stride=_SUBSAMPLE_KERNEL[dims]) if subsample else None
        self.conv_out = conv(inner, in_channels, 1, bias=bias)
        if norm == "batch":
            self.norm: nn.Module = _BATCHNORM[dims](in_channels)
        elif norm == "group":
            self.norm = nn.GroupNorm(_group_count(in_channels), in_channels)
        else:
            self.norm = nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MSRA init of the 1x1 convs (paper, PySlowFast) and a zero gamma so the block starts as the identity."""
        for m in (self.conv_theta, self.conv_phi, self.conv_g, self.conv_out):
            if m is not None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if isinstance(self.norm, nn.Identity):
            nn.init.zeros_(self.conv_out.weight)
            if self.conv_out.bias is not None:
                nn.init.zeros_(self.conv_out.bias)
        else:
            nn.init.zeros_(self.norm.weight)
            nn.init.zeros_(self.norm.bias)

    # ----------------------------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        expected = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, T, H, W)"}[self.dims]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"NonLocalBlock expects a tensor {expected}; got {type(x).__name__}")
        if x.dim() != self.dims + 2:
            raise ValueError(
                f"NonLocalBlock(dims={self.dims}) expects a {self.dims + 2}-D tensor {expected}; "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"NonLocalBlock expects {self.in_channels} input channels; got {x.shape[1]} (shape {tuple(x.shape)})"
            )
        if not x.is_floating_point():
            raise ValueError(f"NonLocalBlock expects a floating-point tensor; got dtype {x.dtype}")
        if any(s == 0 for s in x.shape[2:]):
            raise ValueError(f"NonLocalBlock got an empty positional dim: shape {tuple(x.shape)}")
        if self.subsample and any(s < k for s, k in zip(x.shape[2:], _SUBSAMPLE_KERNEL[self.dims], strict=True)):
            raise ValueError(
                f"subsample=True pools {_SUBSAMPLE_KERNEL[self.dims]} but the input's positional dims are "
                f"{tuple(x.shape[2:])}; use a larger input or subsample=False"
            )
        time = x.shape[2]
        if self.temporal_groups > 1 and time % self.temporal_groups:
            raise ValueError(
                f"temporal_groups={self.temporal_groups} must divide the time length; got {time} "
                f"(shape {tuple(x.shape)})"
            )

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """q (B', N, E), k (B', M, E), v (B', M, d) with B' = B * temporal_groups; the key grid shape."""
        q = self.conv_theta(x) if self.conv_theta is not None else x
        if self.pool is not None and self.pool_embeddings:
            k = self.pool(self.conv_phi(x) if self.conv_phi is not None else x)
            v = self.pool(self.conv_g(x))
        else:
            xp = self.pool(x) if self.pool is not None else x
            k = self.conv_phi(xp) if self.conv_phi is not None else xp
            v = self.conv_g(xp)
        key_grid = tuple(v.shape[2:])
        return self._tokens(q), self._tokens(k), self._tokens(v), key_grid

    def _tokens(self, t: torch.Tensor) -> torch.Tensor:
        """(B, E, T, ...) -> (B * groups, T/groups * ..., E): groups fold time chunks into the batch."""
        b, e, g = t.shape[0], t.shape[1], self.temporal_groups
        n = t.shape[2:].numel() // g  # explicit, not -1: an empty batch (B = 0, e.g. no RoIs) is valid
        t = t.reshape(b, e, g, n).transpose(1, 2)  # (B, G, E, n)
        return t.reshape(b * g, e, n).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        q, k, v, _ = self._embed(x)
        y = self.pairwise(q, k, v)  # (B*G, n, d)
        b, g = x.shape[0], self.temporal_groups
        y = y.transpose(1, 2).reshape(b, g, self.inner_channels, y.shape[1]).transpose(1, 2)
        y = y.reshape(b, self.inner_channels, *x.shape[2:])
        return x + self.norm(self.conv_out(y))

    @torch.no_grad()
    def affinity(self, x: torch.Tensor, queries: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Normalised weights ``f(x_i, x_j) / C(x)`` of chosen query positions over all key positions.

        Only the chosen rows are computed, so this is cheap even where the full N x M map is not.

        Args:
            x: the block's input, as in :meth:`forward`.
            queries: flat indices into the input's positions (row-major over (T, H, W) / (H, W) / (L)).

        Returns:
            ``(weights, key_grid)``: weights (B, Q, M) over the M key positions (row-major over
            ``key_grid``, the subsampled grid); with temporal groups, keys outside a query's group get 0.
        """
        self._check_input(x)
        idx = torch.as_tensor(queries, dtype=torch.long, device=x.device).flatten()
        n = x[0, 0].numel()
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= n:
            raise ValueError(f"queries must be flat indices in [0, {n}) for positional shape {tuple(x.shape[2:])}")
        q, k, _, key_grid = self._embed(x)
        b, g = x.shape[0], self.temporal_groups
        n_group, m_group = q.shape[1], k.shape[1]
        group_of, within = idx // n_group, idx % n_group
        q = q.reshape(b, g, n_group, -1)[:, group_of, within]  # (B, Q, E)
        k = k.reshape(b, g, m_group, -1)
        out = q.new_zeros(b, idx.numel(), g * m_group)
        for group in range(g):
            rows = (group_of == group).nonzero().flatten()
            if rows.numel():
                w = self.pairwise.weights(q[:, rows], k[:, group])
                out[:, rows, group * m_group : (group + 1) * m_group] = w
        return out, key_grid

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, inner_channels={self.inner_channels}, dims={self.dims}, "
            f"instantiation={self.instantiation!r}, subsample={self.subsample}, "
            f"{'pool_embeddings=True, ' if self.pool_embeddings else ''}"
            f"temporal_groups={self.temporal_groups}"
        )


def _group_count(channels: int) -> int:
    """Largest group count <= 32 dividing ``channels`` (GroupNorm's usual 32 where possible)."""
    return next(g for g in range(min(32, channels), 0, -1) if channels % g == 0)
