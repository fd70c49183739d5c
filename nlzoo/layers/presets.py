"""Named members of the non-local family: each a combination of registered parts, not a class of its own.

======================  ===============================================================================
preset                  parts (paper)
======================  ===============================================================================
``nonlocal``            embedded Gaussian, subsampled keys, residual + BN (Wang et al., CVPR 2018)
``gc``                  query-independent context, all keys, GC transform with channel_add, ratio 1/4
                        (Cao et al., ICCVW 2019; mmdetection's "r4" GCNet configs)
``dnl``                 whitened embedded Gaussian + unary term, temperature 0.05, all keys, residual + BN
                        (Yin et al., ECCV 2020; mmsegmentation's DNLHead)
``ann_apnb``            embedded Gaussian over pyramid-pooled anchors at scales (1, 3, 6, 8), residual + BN
                        (Zhu et al., ICCV 2019; the keys of mmsegmentation's APNB)
``criss_cross``         plain softmax (scale 1) over the row and column, theta/phi C // 8, g C -> C,
                        recurrence 2, ``x + gamma y`` (Huang et al., ICCV 2019; mmcv / mmsegmentation CCNet)
``efficient``           efficient attention rho_q(Q) (rho_k(K)^T V), all keys, residual + BN (Shen et al., WACV 2021)
======================  ===============================================================================

Register more with :func:`register_preset`; build with :func:`build_block`, or insert with
``insert_nonlocal(model, after=[...], block="gc")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import registry
from .nonlocal_block import NonLocalBlock

PresetFn = Callable[[int], dict[str, Any]]
_REGISTRY: dict[str, PresetFn] = {}
_MERGED = ("pairwise_args", "keys_args", "fusion_args")
_PART_ARGS = {"instantiation": "pairwise_args", "keys": "keys_args", "fusion": "fusion_args"}

F = TypeVar("F", bound=PresetFn)


def register_preset(name: str) -> Callable[[F], F]:
    """Decorator registering ``fn(in_channels) -> NonLocalBlock arguments`` as the preset ``name``."""

    def decorator(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"register_preset({name!r}) expects a function in_channels -> block arguments")
        registry.add(_REGISTRY, "block preset", name, fn)
        return fn

    return decorator


def list_presets() -> list[str]:
    """Names of the registered block presets, sorted."""
    return sorted(_REGISTRY)


def preset_args(name: str, in_channels: int, **overrides: Any) -> dict[str, Any]:
    """The :class:`NonLocalBlock` arguments of preset ``name`` at ``in_channels``, with ``overrides`` on top (the
    ``*_args`` dictionaries are merged key by key, so ``fusion_args={"ratio": 1/16}`` keeps the preset's
    fusion types). Choosing another part (``keys="all"`` on the criss-cross preset) drops the preset's
    arguments of the part it replaces."""
    args = registry.lookup(_REGISTRY, "block preset", name)(in_channels)
    for part, part_args in _PART_ARGS.items():
        if part in overrides and overrides[part] != args.get(part):
            args.pop(part_args, None)
    for key, value in overrides.items():
        if key in _MERGED and isinstance(value, dict) and isinstance(args.get(key), dict):
            args[key] = {**args[key], **value}
        else:
            args[key] = value
    return args


def build_block(name: str, in_channels: int, **overrides: Any) -> NonLocalBlock:
    """A :class:`NonLocalBlock` of preset ``name`` (``dims=`` and any block argument may be overridden).

    Example:
        >>> block = build_block("gc", 64, dims=2)
        >>> block.fusion, block.instantiation
        ('gc', 'context')
    """
    return NonLocalBlock(in_channels, **preset_args(name, in_channels, **overrides))


@register_preset("nonlocal")
def _nonlocal(in_channels: int) -> dict[str, Any]:
    return {}


@register_preset("gc")
def _gc(in_channels: int) -> dict[str, Any]:
    return {
        "instantiation": "context",
        "keys": "all",
        "fusion": "gc",
        "fusion_args": {"ratio": 1 / 4, "fusion_types": ("channel_add",)},
    }


@register_preset("dnl")
def _dnl(in_channels: int) -> dict[str, Any]:
    return {"instantiation": "disentangled", "keys": "all", "pairwise_args": {"temperature": 0.05}}


@register_preset("ann_apnb")
def _ann_apnb(in_channels: int) -> dict[str, Any]:
    return {"keys": "pyramid", "keys_args": {"scales": (1, 3, 6, 8)}}


@register_preset("criss_cross")
def _criss_cross(in_channels: int) -> dict[str, Any]:
    return {
        "keys": "criss_cross",
        "keys_args": {"recurrence": 2},
        "softmax_scale": 1.0,
        "key_channels": max(1, in_channels // 8),
        "fusion": "scaled",
    }


@register_preset("efficient")
def _efficient(in_channels: int) -> dict[str, Any]:
    return {"instantiation": "efficient", "keys": "all", "pairwise_args": {"heads": 1}}
