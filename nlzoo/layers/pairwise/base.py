"""The pairwise-function registry: one registered class per instantiation of f(x_i, x_j).

A pairwise function turns queries, keys and values into the non-local response
``y_i = 1/C(x) * sum_j f(x_i, x_j) g(x_j)`` (Wang et al., CVPR 2018, eq. 1). Adding an
instantiation means writing one subclass and decorating it with :func:`register_pairwise`; the block
never changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import nn

_REGISTRY: dict[str, type[PairwiseFunction]] = {}

T = TypeVar("T", bound="type[PairwiseFunction]")


class PairwiseFunction(nn.Module):
    """Base class: computes ``y = 1/C(x) * f(q, k) @ v`` without materialising ``f`` when avoidable.

    Shapes: queries ``q`` (B, N, E), keys ``k`` (B, M, E), values ``v`` (B, M, D) -> ``y`` (B, N, D).
    N is the number of query positions, M the number of (possibly subsampled) key positions.

    Subclasses set ``embeds`` (whether q and k come from the theta/phi embeddings or are the raw input,
    as in the paper's plain Gaussian) and ``uses_softmax_scale``.
    """

    embeds: ClassVar[bool] = True
    uses_softmax_scale: ClassVar[bool] = False
    name: ClassVar[str] = ""

    def __init__(self, embed_dim: int, *, softmax_scale: float | None = None) -> None:
        super().__init__()
        if softmax_scale is not None and not self.uses_softmax_scale:
            softmax_forms = ", ".join(n for n, c in _REGISTRY.items() if c.uses_softmax_scale)
            raise ValueError(
                f"softmax_scale does not apply to the {self.name!r} instantiation (it normalises by the number "
                f"of key positions); it applies to the softmax forms: {softmax_forms}."
            )
        self.embed_dim = embed_dim

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
        if name in _REGISTRY:
            raise ValueError(f"a pairwise function named {name!r} is already registered ({_REGISTRY[name]!r})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def list_pairwise() -> list[str]:
    """Names of the registered pairwise functions (instantiations), sorted."""
    return sorted(_REGISTRY)


def get_pairwise(name: str) -> type[PairwiseFunction]:
    """The registered class for ``name``; an unknown name raises KeyError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(
            f"unknown non-local instantiation {name!r}.{hint} Known: {', '.join(list_pairwise())}."
        ) from None
