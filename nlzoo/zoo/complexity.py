"""Parameters and FLOPs of registered models, measured on the ``meta`` device (no weights, no arithmetic).

A model built on the meta device (:func:`nlzoo.zoo.meta.build_on_meta`) has the real architecture but no
storage, and a forward pass on it only propagates shapes: the whole zoo (109 models) is counted in about 13 s
on a 2-core Xeon, without memory. (PyTorch runs meta kernels in Python, about 1 ms an op.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..layers import nonlocal_blocks
from ..models.flops import forward_flops
from .meta import build_on_meta
from .registry import model_info, split_tag


@dataclass(frozen=True)
class Complexity:
    """Size and cost of one model at its default input.

    Attributes:
        params: number of parameters.
        flops: FLOPs of one forward pass on one input (a multiply-add counts 2).
        nonlocal_flops: the part spent in non-local blocks.
        nonlocal_blocks: how many non-local blocks the model has.
        input_shape: the input the FLOPs are for, (C, T, H, W) or (C, H, W), from the data config.
    """

    params: int
    flops: int
    nonlocal_flops: int
    nonlocal_blocks: int
    input_shape: tuple[int, ...]

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


def measure_complexity(name: str, *, input_shape: tuple[int, ...] | None = None, **model_args: Any) -> Complexity:
    """Count parameters and forward FLOPs of ``arch`` or ``arch.tag`` at its data config's input size.

    Args:
        name: a registered architecture, optionally with a tag (whose architecture arguments, head size and
            data config then apply).
        input_shape: another input, (C, T, H, W) or (C, H, W), instead of the data config's.
        **model_args: architecture arguments, as for :func:`nlzoo.load`.

    Returns:
        The measurements.

    Example:
        >>> measure_complexity("c2d_r18").input_shape
        (3, 8, 224, 224)
    """
    entry = model_info(name)
    _, tag_name = split_tag(name)
    tag = entry.tag(tag_name) if tag_name else None
    args = {**(tag.model_args if tag else {}), **({"num_classes": tag.num_classes} if tag else {}), **model_args}
    data_config = entry.data_config.replace(**tag.data_config) if tag else entry.data_config
    model = build_on_meta(entry.builder, **args)
    shape = tuple(input_shape) if input_shape is not None else data_config.input_shape
    params, blocks = sum(p.numel() for p in model.parameters()), sum(1 for _ in nonlocal_blocks(model))
    count = forward_flops(_drop_batchnorm(model), shape)
    return Complexity(
        params=params,
        flops=count.total,
        nonlocal_flops=count.nonlocal_blocks,
        nonlocal_blocks=blocks,
        input_shape=shape,
    )


def _drop_batchnorm(model: nn.Module) -> nn.Module:
    """``model`` with its BatchNorm layers replaced by identities, in place. FlopCounterMode counts no FLOPs in
    them but decomposes each call into dozens of Python-level primitives: 60% of the counting time of an I3D
    ResNet, which made ``nlzoo models`` take 30 s. The counts are the same (a test compares with a real model).
    """
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
    return model
