"""The non-local block (Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018, arXiv 1711.07971) and
its family, as one block made of three registered parts.

* **keys** (:mod:`nlzoo.layers.keys`): which positions a query sees - all, max-pool subsampled (the paper's
  block), pyramid-pooled anchors (ANN), the query's row and column (CCNet);
* **pairwise function** (:mod:`nlzoo.layers.pairwise`): the paper's four, DNL's whitened Gaussian with its unary
  term, GCNet's query-independent context, efficient (linear) attention;
* **fusion** (:mod:`nlzoo.layers.fusion`): the paper's residual through W_z and a norm, GCNet's bottleneck
  transform with channel add / mul, CCNet's learnt scalar.

One class covers time (B, C, L), space (B, C, H, W) and spacetime (B, C, T, H, W) inputs. Module names follow
PySlowFast / pytorchvideo (``conv_theta``, ``conv_phi``, ``conv_g``, ``conv_out``, ``norm``) and mmcv for the
GC transform (``channel_add_conv``, ``channel_mul_conv``), so published weights map by key. Named combinations
(``gc``, ``dnl``, ...) are in :mod:`nlzoo.layers.presets`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError
from .convs import CONV
from .fusion import Fusion, get_fusion
from .keys import Keys, get_keys
from .pairwise import PairwiseFunction, get_pairwise

NormKind = Literal["batch", "group", "none"]


class NonLocalBlock(nn.Module):
    """``z = fuse(x, y)`` with ``y_i = 1/C(x) sum_{j in keys(i)} f(x_i, x_j) g(x_j)``; by default the paper's
    ``z = norm(W_z y) + x`` with embedded-Gaussian ``f`` over max-pool subsampled keys.

    ::

        x ─┬────────────────────────────────────────────────────────────────┐
           ├─ conv_theta (1x1) ─────────────── q ─┐                         │
           ├─ [keys: pool] ─┬─ conv_phi (1x1) ─ k ─┼─ pairwise f, 1/C ── y ─ conv_out (1x1) ─ norm(γ=0) ─(+)─ z
           │                └─ conv_g   (1x1) ─ v ─┘                                 (fusion: residual)
        (the plain Gaussian has no theta/phi: q = x, k = pooled x; GC's context has no theta and no g)

    A new block is an exact identity wherever its paper allows (the norm's gamma, ``conv_out`` without a norm,
    GC's last transform conv, CCNet's gamma start at zero), so it can be dropped into a pretrained network
    without changing its outputs.

    Args:
        in_channels: channels C of the input (and output).
        dims: positional dims of the input: 1 (B, C, L), 2 (B, C, H, W) or 3 (B, C, T, H, W).
        inner_channels: width d of g (and, by default, of theta and phi); default C // 2 (the paper's bottleneck).
        instantiation: a registered pairwise function (see :func:`nlzoo.layers.list_pairwise`).
        softmax_scale: scale inside the softmax forms; ``None`` means the instantiation's default
            (``d ** -0.5`` for embedded Gaussian, as the authors' code; 1 for Gaussian). 1.0 matches mmaction2.
        subsample: max-pool the input of phi and g (kernel (1,2,2) / (2,2) / 2, the authors' choice): the same as
            ``keys="subsampled"``. Default: True unless ``keys`` says otherwise.
        pool_embeddings: with subsampling, pool the outputs phi(x) and g(x) instead of x, as mmcv's
            ``NonLocalNd`` (mmaction2) does. Max-pooling does not commute with the 1x1 convs, so weights
            trained in that order need it; it costs 4x more in the phi/g convs.
        norm: ``"batch"``, ``"group"`` or ``"none"`` after ``conv_out`` (the residual fusion; default batch).
            Fusions without an output norm (gc, scaled) reject it.
        temporal_groups: run the pairwise step within this many equal groups of frames (the authors'
            grouping for long clips); 1 means all positions attend to all.
        bias: whether theta, phi, g and ``conv_out`` have biases (they do in the authors' code).
        keys: a registered keys part (:func:`nlzoo.layers.keys.list_keys`): ``"all"``, ``"subsampled"``,
            ``"pyramid"``, ``"criss_cross"``.
        key_channels: width of theta and phi when it differs from ``inner_channels`` (CCNet: C // 8).
        fusion: a registered fusion part (:func:`nlzoo.layers.fusion.list_fusions`): ``"residual"``, ``"gc"``,
            ``"scaled"``.
        pairwise_args: extra arguments of the pairwise function (``temperature`` for DNL, ``heads`` for efficient).
        keys_args: arguments of the keys part (``scales`` for pyramid, ``recurrence`` for criss-cross).
        fusion_args: arguments of the fusion part (``ratio``, ``fusion_types`` for gc).

    Raises:
        ConfigError: invalid sizes or a combination of parts that makes no sense (the message says why).
        UnknownNameError: an unknown instantiation / keys / fusion name (with close matches).
        ValueError: (at call time) inputs of the wrong rank, channels, dtype or spatial size.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        dims: int = 3,
        inner_channels: int | None = None,
        instantiation: str = "embedded_gaussian",
        softmax_scale: float | None = None,
        subsample: bool | None = None,
        pool_embeddings: bool = False,
        norm: NormKind | None = None,
        temporal_groups: int = 1,
        bias: bool = True,
        keys: str | None = None,
        key_channels: int | None = None,
        fusion: str = "residual",
        pairwise_args: Mapping[str, Any] | None = None,
        keys_args: Mapping[str, Any] | None = None,
        fusion_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if dims not in CONV:
            raise ConfigError(f"dims must be 1 (B,C,L), 2 (B,C,H,W) or 3 (B,C,T,H,W); got {dims!r}")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ConfigError(f"in_channels must be a positive int; got {in_channels!r}")
        inner = in_channels // 2 if inner_channels is None else inner_channels
        if not isinstance(inner, int) or inner < 1:
            raise ConfigError(
                f"inner_channels must be a positive int; got {inner!r}"
                + (f" (the default C // 2 for in_channels={in_channels})" if inner_channels is None else "")
            )
        if key_channels is not None and (not isinstance(key_channels, int) or key_channels < 1):
            raise ConfigError(f"key_channels must be a positive int; got {key_channels!r}")
        if not isinstance(temporal_groups, int) or temporal_groups < 1:
            raise ConfigError(f"temporal_groups must be a positive int; got {temporal_groups!r}")
        if temporal_groups > 1 and dims == 2:
            raise ConfigError("temporal_groups needs a time axis: use dims=3 (B,C,T,H,W) or dims=1 (B,C,L)")
        if norm not in (None, "batch", "group", "none"):
            raise ConfigError(f"norm must be 'batch', 'group' or 'none'; got {norm!r}")
        keys_name = _keys_name(keys, subsample)
        if pool_embeddings and keys_name != "subsampled":
            raise ConfigError(
                "pool_embeddings=True chooses where subsampling pools; it needs subsample=True "
                f"(keys='subsampled'), not keys={keys_name!r}"
            )

        pairwise_cls = get_pairwise(instantiation)
        keys_cls, fusion_cls = get_keys(keys_name), get_fusion(fusion)
        keys_kwargs = dict(keys_args or {})
        if keys_name == "subsampled":
            keys_kwargs.setdefault("pool_embeddings", pool_embeddings)
        self.keys_part: Keys = _construct(keys_cls, "keys_args", keys_kwargs)
        self.fusion_part: Fusion = _construct(fusion_cls, "fusion_args", dict(fusion_args or {}))
        _check_combination(dims, temporal_groups, norm, instantiation, pairwise_cls, self.keys_part, self.fusion_part)

        self.in_channels, self.inner_channels, self.dims = in_channels, inner, dims
        self.instantiation, self.temporal_groups = instantiation, temporal_groups
        self.keys, self.fusion = keys_name, fusion
        self.subsample, self.pool_embeddings = keys_name == "subsampled", pool_embeddings
        conv = CONV[dims]
        embed = (key_channels or inner) if pairwise_cls.embeds else in_channels
        value = self.fusion_part.value_channels(in_channels, inner, inner_channels is not None)
        self.value_channels = in_channels if value is None else value
        self.pairwise: PairwiseFunction = _construct(
            pairwise_cls,
            "pairwise_args",
            {"softmax_scale": softmax_scale, "value_dim": self.value_channels, **dict(pairwise_args or {})},
            embed,
        )
        needs_theta = pairwise_cls.embeds and not pairwise_cls.query_independent
        self.conv_theta = conv(in_channels, embed, 1, bias=bias) if needs_theta else None
        self.conv_phi = (
            conv(in_channels, pairwise_cls.key_channels(embed), 1, bias=bias) if pairwise_cls.embeds else None
        )
        self.conv_g = conv(in_channels, value, 1, bias=bias) if value is not None else None
        self.pool: nn.Module | None = None
        self.keys_part.build(self)
        self.fusion_part.build(
            self, value_channels=self.value_channels, norm=norm or self.fusion_part.default_norm, bias=bias
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MSRA init of the 1x1 convs (paper, PySlowFast; fan-in for GC's C -> 1 mask as mmcv), and the fusion's
        zero init so the block starts as the identity."""
        mask_mode = "fan_in" if self.pairwise.query_independent else "fan_out"
        for m, mode in ((self.conv_theta, "fan_out"), (self.conv_phi, mask_mode), (self.conv_g, "fan_out")):
            if m is not None:
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.fusion_part.reset_parameters(self)

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
        self.keys_part.check_input(self, x)
        time = x.shape[2]
        if self.temporal_groups > 1 and time % self.temporal_groups:
            raise ValueError(
                f"temporal_groups={self.temporal_groups} must divide the time length; got {time} "
                f"(shape {tuple(x.shape)})"
            )

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query, key and value maps: q (B, E, *grid) (E = 0 for a query-independent pairwise function),
        k (B, E', *key grid), v (B, D, *key grid)."""
        if self.conv_theta is not None:
            q = self.conv_theta(x)
        elif self.pairwise.query_independent:
            q = x.new_zeros(x.shape[0], 0, *x.shape[2:])
        else:
            q = x
        source = self.keys_part.key_source(self, x)
        k = self.conv_phi(source) if self.conv_phi is not None else source
        v = self.conv_g(source) if self.conv_g is not None else source
        return q, self.keys_part.pool_embedded(self, k), self.keys_part.pool_embedded(self, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        for _ in range(self.keys_part.repeats):
            q, k, v = self.embed(x)
            x = self.fusion_part.fuse(self, x, self.keys_part.attend(self, q, k, v))
        return x

    @torch.no_grad()
    def affinity(self, x: torch.Tensor, queries: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Normalised weights ``f(x_i, x_j) / C(x)`` of chosen query positions over all key positions.

        Only the chosen rows are computed, so this is cheap even where the full N x M map is not.

        Args:
            x: the block's input, as in :meth:`forward`.
            queries: flat indices into the input's positions (row-major over (T, H, W) / (H, W) / (L)).

        Returns:
            ``(weights, key_grid)``: weights (B, Q, M) over the M key positions (row-major over
            ``key_grid``: the subsampled grid, the pyramid's anchors (1, S), or the full grid for criss-cross,
            whose off-axis keys get 0); with temporal groups, keys outside a query's group get 0. With a
            criss-cross recurrence, the weights of the first application.
        """
        self._check_input(x)
        idx = torch.as_tensor(queries, dtype=torch.long, device=x.device).flatten()
        n = x[0, 0].numel()
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= n:
            raise ValueError(f"queries must be flat indices in [0, {n}) for positional shape {tuple(x.shape[2:])}")
        q, k, _ = self.embed(x)
        return self.keys_part.affinity(self, q, k, idx)

    def extra_repr(self) -> str:
        parts = [
            f"in_channels={self.in_channels}, inner_channels={self.inner_channels}, dims={self.dims}",
            f"instantiation={self.instantiation!r}",
        ]
        if self.keys in ("all", "subsampled"):
            parts.append(f"subsample={self.subsample}")
        else:
            parts.append(f"keys={self.keys!r}")
        parts += [p for p in (self.keys_part.extra_repr(),) if p]
        if self.fusion != "residual":
            parts.append(f"fusion={self.fusion!r}")
        parts += [p for p in (self.fusion_part.extra_repr(),) if p]
        parts.append(f"temporal_groups={self.temporal_groups}")
        return ", ".join(parts)


def _keys_name(keys: str | None, subsample: bool | None) -> str:
    """The keys part from ``keys`` and the older ``subsample`` flag, which must not contradict each other."""
    if keys is None:
        return "all" if subsample is False else "subsampled"
    if subsample is not None and subsample != (keys == "subsampled"):
        raise ConfigError(
            f"subsample={subsample} contradicts keys={keys!r} (subsample=True means keys='subsampled'); pass only keys"
        )
    return keys


def _construct(cls: type, what: str, kwargs: dict[str, Any], *args: Any) -> Any:
    """Build a part, turning an unknown or ill-typed argument into one ConfigError naming the part."""
    try:
        return cls(*args, **kwargs)
    except TypeError as err:
        raise ConfigError(f"{what} for {getattr(cls, 'name', cls.__name__)!r}: {err}") from None


def _check_combination(
    dims: int,
    temporal_groups: int,
    norm: str | None,
    instantiation: str,
    pairwise_cls: type[PairwiseFunction],
    keys: Keys,
    fusion: Fusion,
) -> None:
    """Reject combinations of parts that make no sense, saying why."""
    if dims < keys.min_dims:
        raise ConfigError(
            f"keys {keys.name!r} need at least {keys.min_dims} positional axes (a row and a column); a "
            f"{dims}D input has {dims}, where a query's row and column are all positions: use keys='all'"
        )
    if temporal_groups > 1 and not keys.supports_temporal_groups:
        raise ConfigError(f"keys {keys.name!r} do not split into temporal groups; use temporal_groups=1")
    if temporal_groups > 1 and pairwise_cls.query_independent:
        raise ConfigError(
            f"instantiation {instantiation!r} pools one context vector per sample; temporal groups would split it "
            "(that is not GCNet's block): use temporal_groups=1"
        )
    if fusion.needs_query_independent and not pairwise_cls.query_independent:
        raise ConfigError(
            f"fusion {fusion.name!r} transforms one context vector per sample; it needs a query-independent "
            f"instantiation ('context'), not {instantiation!r}"
        )
    if norm is not None and fusion.default_norm is None:
        raise ConfigError(
            f"norm={norm!r} applies to the residual fusion's output norm; fusion {fusion.name!r} has none "
            "(leave norm unset)"
        )
