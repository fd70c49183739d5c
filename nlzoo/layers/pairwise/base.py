"""The pairwise-function registry: one registered class per instantiation of f(x_i, x_j).

A pairwise function turns queries, keys and values into the non-local response
``y_i = 1/C(x) * sum_j f(x_i, x_j) g(x_j)`` (Wang et al., CVPR 2018, eq. 1). Adding an
instantiation means writing one subclass and decorating it with :func:`register_pairwise`; the block
never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import nn

from ...errors import ConfigError
from .. import registry

_REGISTRY: dict[str, type[PairwiseFunction]] = {}

T = TypeVar("T", bound="type[PairwiseFunction]")


class PairwiseFunction(nn.Module):
    """Base class: computes ``y = 1/C(x) * f(q, k) @ v`` without materialising ``f`` when avoidable.

    Shapes: queries ``q`` (B, N, E), keys ``k`` (B, M, E), values ``v`` (B, M, D) -> ``y`` (B, N, D).
    N is the number of query positions, M the number of (possibly subsampled) key positions.

    Subclasses set ``embeds`` (whether q and k come from the theta/phi embeddings or are the raw input,
    as in the paper's plain Gaussian), ``uses_softmax_scale``, ``query_independent`` (one response for every
    query, as GCNet's context: the block then computes no queries and ``forward`` returns (B, 1, D)) and
    ``plain_softmax`` (``f = exp(s q.k)`` exactly, which keys that aggregate in several passes, such as
    criss-cross, need).
    """

    embeds: ClassVar[bool] = True
    uses_softmax_scale: ClassVar[bool] = False
    query_independent: ClassVar[bool] = False
    plain_softmax: ClassVar[bool] = False
    name: ClassVar[str] = ""

    def __init__(self, embed_dim: int, *, softmax_scale: float | None = None, value_dim: int | None = None) -> None:
        super().__init__()
        if softmax_scale is not None and not self.uses_softmax_scale:
            softmax_forms = ", ".join(n for n, c in _REGISTRY.items() if c.uses_softmax_scale)
            raise ConfigError(
                f"softmax_scale does not apply to the {self.name!r} instantiation (it normalises by the number "
                f"of key positions); it applies to the softmax forms: {softmax_forms}."
            )
        self.embed_dim = embed_dim
        self.value_dim = value_dim

    @classmethod
    def key_channels(cls, embed_dim: int) -> int:
        """Output width of phi: ``embed_dim`` (extra channels carry per-key terms, e.g. DNL's unary logit)."""
        return embed_dim

    def prepare(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Statistics over *all* queries / keys of a group (DNL's whitening); the block calls it once per group
        before :meth:`forward` or :meth:`weights`, so that weights of a few chosen queries stay exact."""
        return q, k

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The normalised pairwise weights ``f(q_i, k_j) / C(x)`` as a (B, Q, M) tensor.

        Materialises Q x M, so call it for a few chosen queries (visualisation), not in training.
        """
        raise NotImplementedError


def register_pairwise(name: str) -> Callable[[T], T]:
    """Class decorator adding a :class:`PairwiseFunction` subclass to the registry under ``name``."""

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, PairwiseFunction)):
            raise TypeError(f"register_pairwise({name!r}) expects a PairwiseFunction subclass, got {cls!r}")
        registry.add(_REGISTRY, "pairwise function", name, cls)
        cls.name = name
        return cls

    return decorator


def list_pairwise() -> list[str]:
    """Names of the registered pairwise functions (instantiations), sorted."""
    return sorted(_REGISTRY)


def get_pairwise(name: str) -> type[PairwiseFunction]:
    """The registered class for ``name``; an unknown name raises UnknownNameError (a KeyError) listing the known
    ones."""
    return registry.lookup(_REGISTRY, "non-local instantiation", name)
