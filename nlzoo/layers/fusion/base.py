"""The fusion registry: how the aggregated response returns into the input.

A fusion part is a small rule object: :meth:`Fusion.value_channels` fixes the width of g (or ``None``: the values
are the raw input), :meth:`Fusion.build` adds its modules to the block under fixed names (so published weights
map by key), :meth:`Fusion.reset_parameters` makes a new block the identity where the paper allows, and
:meth:`Fusion.fuse` returns the block's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

import torch

from .. import registry

if TYPE_CHECKING:
    from ..nonlocal_block import NonLocalBlock

_REGISTRY: dict[str, type[Fusion]] = {}

T = TypeVar("T", bound="type[Fusion]")


class Fusion:
    """Base class. ``default_norm`` is the norm used when the block's ``norm`` is not given; ``None`` means the
    part has no output norm (and an explicit ``norm`` is an error). ``needs_query_independent``: the part
    transforms one context vector per sample (GCNet)."""

    name: ClassVar[str] = ""
    default_norm: ClassVar[str | None] = None
    needs_query_independent: ClassVar[bool] = False

    def value_channels(self, in_channels: int, inner_channels: int, inner_given: bool) -> int | None:
        """Width of g (values); ``None`` when the values are the raw input (no g conv)."""
        raise NotImplementedError

    def build(self, block: NonLocalBlock, *, value_channels: int, norm: str | None, bias: bool) -> None:
        raise NotImplementedError

    def reset_parameters(self, block: NonLocalBlock) -> None:
        raise NotImplementedError

    def fuse(self, block: NonLocalBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""


def register_fusion(name: str) -> Callable[[T], T]:
    """Class decorator adding a :class:`Fusion` subclass to the fusion registry under ``name``."""

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, Fusion)):
            raise TypeError(f"register_fusion({name!r}) expects a Fusion subclass, got {cls!r}")
        registry.add(_REGISTRY, "fusion part", name, cls)
        cls.name = name
        return cls

    return decorator


def get_fusion(name: str) -> type[Fusion]:
    """The registered fusion class for ``name`` (UnknownNameError with close matches otherwise)."""
    return registry.lookup(_REGISTRY, "fusion part", name)


def list_fusions() -> list[str]:
    """Names of the registered fusion parts, sorted."""
    return sorted(_REGISTRY)
