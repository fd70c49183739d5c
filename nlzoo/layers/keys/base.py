"""The keys registry: which positions each query sees, and how the block aggregates over them.

A keys part is a small rule object (no parameters of its own): :meth:`Keys.build` adds the modules it needs to
the block under fixed names (``pool`` for max-pool subsampling), :meth:`Keys.key_source` gives the map that phi
and g read, and :meth:`Keys.attend` turns query, key and value maps into the response map. The default
``attend`` flattens positions into tokens and calls the block's pairwise function once per temporal group.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

import torch

from .. import registry

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock

_REGISTRY: dict[str, type[Keys]] = {}

T = TypeVar("T", bound="type[Keys]")


def tokens(t: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, E, T, ...) -> (B * groups, T/groups * ..., E): groups fold equal chunks of time into the batch."""
    b, e, n = t.shape[0], t.shape[1], t.shape[2:].numel() // groups
    t = t.reshape(b, e, groups, n).transpose(1, 2)  # (B, G, E, n)
    return t.reshape(b * groups, e, n).transpose(1, 2)


def untokens(y: torch.Tensor, batch: int, groups: int, grid: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`tokens`: (B * groups, n, D) -> (B, D, *grid)."""
    d, n = y.shape[-1], math.prod(grid) // groups  # explicit n, not -1: an empty batch (B = 0) reshapes too
    y = y.transpose(1, 2).reshape(batch, groups, d, n).transpose(1, 2)
    return y.reshape(batch, d, *grid)


class Keys:
    """Base: every query sees every key position of its temporal group (the paper's block without subsampling).

    Class attributes: ``min_dims`` (fewest positional axes it makes sense on), ``supports_temporal_groups``.
    Attribute ``repeats``: how many times the whole block is applied (criss-cross recurrence; 1 otherwise).
    """

    name: ClassVar[str] = ""
    min_dims: ClassVar[int] = 1
    supports_temporal_groups: ClassVar[bool] = True
    repeats: int = 1

    def build(self, block: NonLocalBlock) -> None:
        """Add the modules this part needs to ``block``."""

    def check_input(self, block: NonLocalBlock, x: torch.Tensor) -> None:
        """Raise ValueError for an input this part cannot handle (e.g. too small to pool)."""

    def key_source(self, block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
        """The map phi and g read (the input, or a pooled version of it)."""
        return x

    def pool_embedded(self, block: NonLocalBlock, t: torch.Tensor) -> torch.Tensor:
        """Pooling applied after phi / g (mmcv's order), if this part pools there."""
        return t

    def attend(self, block: NonLocalBlock, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Response map (B, D, *query grid), or (B, D, 1, ...) for a query-independent pairwise function.

        q (B, E, *grid) (E = 0 when the pairwise function ignores queries), k (B, E', *key grid),
        v (B, D, *key grid).
        """
        batch, groups = v.shape[0], block.temporal_groups
        qt, kt = block.pairwise.prepare(tokens(q, groups), tokens(k, groups))
        y = block.pairwise(qt, kt, tokens(v, groups))
        if block.pairwise.query_independent:
            return y.transpose(1, 2).reshape(batch, y.shape[-1], *(1,) * (q.dim() - 2))
        return untokens(y, batch, groups, tuple(q.shape[2:]))

    def affinity(
        self, block: NonLocalBlock, q: torch.Tensor, k: torch.Tensor, queries: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Weights (B, Q, M) of the chosen flat query indices over the key positions, and the key grid."""
        b, g = q.shape[0], block.temporal_groups
        qt, kt = block.pairwise.prepare(tokens(q, g), tokens(k, g))
        n_group, m_group = qt.shape[1], kt.shape[1]
        group_of, within = queries // n_group, queries % n_group
        qt = qt.reshape(b, g, n_group, -1)[:, group_of, within]  # (B, Q, E)
        kt = kt.reshape(b, g, m_group, -1)
        out = kt.new_zeros(b, queries.numel(), g * m_group)
        for group in range(g):
            rows = (group_of == group).nonzero().flatten()
            if rows.numel():
                out[:, rows, group * m_group : (group + 1) * m_group] = block.pairwise.weights(
                    qt[:, rows], kt[:, group]
                )
        return out, tuple(k.shape[2:])

    def extra_repr(self) -> str:
        return ""


def register_keys(name: str) -> Callable[[T], T]:
    """Class decorator adding a :class:`Keys` subclass to the keys registry under ``name``."""

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Keys)):
            raise TypeError(f"register_keys({name!r}) expects a Keys subclass, got {cls!r}")
        registry.add(_REGISTRY, "keys part", name, cls)
        cls.name = name
        return cls

    return decorator


def get_keys(name: str) -> type[Keys]:
    """The registered keys class for ``name`` (UnknownNameError with close matches otherwise)."""
    return registry.lookup(_REGISTRY, "keys part", name)


def list_keys() -> list[str]:
    """Names of the registered keys parts, sorted."""
    return sorted(_REGISTRY)
