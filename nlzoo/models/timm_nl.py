"""timm backbones with non-local blocks, for image classification and as pose backbones.

The timm model keeps its own parameter names (non-local blocks only add ``*_nonlocal.*`` keys), so timm's
pretrained weights load into it untouched, and new blocks start as identities.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import timm
from torch import nn

from ..errors import UnknownNameError
from ..layers import insert_nonlocal


def create_timm_nonlocal(
    timm_name: str,
    *,
    nonlocal_after: Sequence[str] = (),
    nonlocal_args: Mapping[str, Any] | None = None,
    **timm_kwargs: Any,
) -> nn.Module:
    """``timm.create_model(timm_name, **timm_kwargs)`` (random init) with 2D non-local blocks inserted.

    Args:
        timm_name: a timm architecture (``"resnet50"``, ``"resnext50_32x4d"``, ...). Weights are loaded by
            the zoo (a tag's source), never downloaded here.
        nonlocal_after: submodule names to follow with a block (``["layer3.1", "layer3.3"]``).
        nonlocal_args: :class:`~nlzoo.layers.NonLocalBlock` arguments.
        **timm_kwargs: passed to :func:`timm.create_model` (``num_classes``, ``drop_rate``, ...).
    """
    check_timm_architecture(timm_name)
    model = timm.create_model(timm_name, pretrained=False, **timm_kwargs)
    if nonlocal_after:
        insert_nonlocal(model, list(nonlocal_after), dims=2, **dict(nonlocal_args or {}))
    return model


def check_timm_architecture(timm_name: str) -> None:
    """Raise KeyError (naming similar architectures) unless timm knows ``timm_name`` (``arch`` or ``arch.tag``)."""
    arch = timm_name.partition(".")[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        similar = close or timm.list_models(f"*{arch[:6]}*")[:5]
        raise UnknownNameError(f"timm has no architecture {arch!r}. Similar: {', '.join(similar) or 'none'}.")
