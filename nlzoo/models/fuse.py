"""Fold eval-mode BatchNorm into the convolution that feeds it, so inference spends its time in matrix units.

In eval mode ``bn(conv(x)) = conv'(x)`` with ``w' = w * s`` and ``b' = (b - mean) * s + beta`` per output
channel, ``s = gamma / sqrt(var + eps)``: one memory-bound pass over every activation less per pair, exact
in real arithmetic (computed in float64, so fp32 outputs match up to rounding).

Which BN follows which conv is found by running the model once on an example input, not from module
names, so it works for every family (ResNet-3D, torchvision video, timm, pose heads, the norm after a
non-local block's ``conv_out``) and refuses anything it cannot prove: a pair is folded only if, in that run,
every output of the conv went straight into that BN and nothing else read it, and the BN saw nothing but
that conv's outputs. The folded BN becomes ``nn.Identity``; the conv keeps its memory format.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class _UseTracker(TorchFunctionMode):
    """Records every tensor-producing torch call that reads a tensor, attributed to the BN running it (if any)."""

    def __init__(self, watched: dict[int, str], outside_uses: set[str]) -> None:
        super().__init__()
        self.watched, self.outside_uses = watched, outside_uses
        self.inside_bn: str | None = None  # the BN whose forward is running; its own reads are the expected use
        self.bn_input: int | None = None

    def __torch_function__(self, func: Callable, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if any(isinstance(r, torch.Tensor) for r in tree_flatten(result)[0]):  # shape / dim queries read nothing
            for arg in tree_flatten((args, kwargs))[0]:
                conv = self.watched.get(id(arg)) if isinstance(arg, torch.Tensor) else None
                if conv is not None and not (self.inside_bn is not None and id(arg) == self.bn_input):
                    self.outside_uses.add(conv)
        return result


def find_conv_bn_pairs(model: nn.Module, example: Any) -> list[tuple[str, str]]:
    """(conv name, BN name) pairs of ``model`` whose BN only ever normalises that conv's unshared output.

    Args:
        model: the network, in eval mode.
        example: one input (or a tuple of positional inputs) for a forward pass; its values do not matter.
    """
    names: dict[nn.Module, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(module, name)  # a module registered twice goes by its first name
    watched: dict[int, str] = {}  # id(conv output) -> conv name
    keep_alive: list[torch.Tensor] = []  # ids stay unique while the outputs live
    fed: dict[str, set[str | None]] = defaultdict(set)  # BN -> the convs (None: anything else) its inputs came from
    outside_uses: set[str] = set()
    tracker = _UseTracker(watched, outside_uses)

    def conv_done(module: nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            watched[id(output)] = names[module]
            keep_alive.append(output)

    def bn_enter(module: nn.Module, args: Any) -> None:
        x = args[0] if args else None
        fed[names[module]].add(watched.get(id(x)) if isinstance(x, torch.Tensor) else None)
        tracker.inside_bn, tracker.bn_input = names[module], id(x)

    def bn_leave(module: nn.Module, args: Any, output: Any) -> None:
        tracker.inside_bn = tracker.bn_input = None

    handles = []
    for module in model.modules():
        if isinstance(module, _CONVS):
            handles.append(module.register_forward_hook(conv_done))
        elif isinstance(module, _BATCHNORMS):
            handles += [module.register_forward_pre_hook(bn_enter), module.register_forward_hook(bn_leave)]
    args = example if isinstance(example, tuple) else (example,)
    try:
        with torch.no_grad(), tracker:
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
    feeders: dict[str, set[str]] = defaultdict(set)  # conv -> the BNs it fed
    for bn, convs in fed.items():
        for conv in convs:
            if conv is not None:
                feeders[conv].add(bn)
    pairs = []
    for bn, convs in fed.items():
        (conv,) = convs if len(convs) == 1 else (None,)
        if conv is not None and feeders[conv] == {bn} and conv not in outside_uses:
            pairs.append((conv, bn))
    return pairs


@torch.no_grad()
def fold_conv_bn(conv: nn.Module, bn: nn.Module) -> None:
    """Fold eval-mode ``bn`` into ``conv``'s weight and bias, in place (computed in float64)."""
    scale = bn.running_var.double().add(bn.eps).rsqrt()
    shift = -bn.running_mean.double() * scale
    if bn.weight is not None:
        scale, shift = scale * bn.weight.double(), shift * bn.weight.double() + bn.bias.double()
    weight = conv.weight
    # Output channels are dim 0 of a convolution's weight and dim 1 of a transposed one's (groups=1 only).
    shape = (1, -1) if isinstance(conv, nn.modules.conv._ConvTransposeNd) else (-1,)
    shape += (1,) * (weight.dim() - len(shape))
    weight.copy_((weight.double() * scale.view(shape)).to(weight.dtype))
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.to(weight.dtype), requires_grad=weight.requires_grad)
    else:
        conv.bias.copy_(bias.to(conv.bias.dtype))


def fold_batchnorm(model: nn.Module, example: Any) -> list[tuple[str, str]]:
    """Fold every eval-mode BatchNorm that directly follows a convolution into it, in place.

    Only for inference: the folded model cannot be trained (its BNs are gone) and its state dict has other
    keys, so save the model before folding, not after.

    Args:
        model: the network, in eval mode.
        example: one input (or a tuple of positional inputs) of a shape the model accepts.

    Returns:
        The folded (conv name, BN name) pairs.

    Raises:
        ValueError: the model is in training mode (its BNs would use batch statistics).
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode: call model.eval() first")
    modules = dict(model.named_modules(remove_duplicate=False))
    pairs = []
    for conv_name, bn_name in find_conv_bn_pairs(model, example):
        conv, bn = modules[conv_name], modules[bn_name]
        if bn.running_mean is None or bn.running_var is None:
            continue  # a BN without running statistics normalises by batch statistics even in eval
        if isinstance(conv, nn.modules.conv._ConvTransposeNd) and conv.groups != 1:
            continue
        fold_conv_bn(conv, bn)
        identity = _identity_keeping_hooks(bn)
        for name in [n for n, m in modules.items() if m is bn]:  # every name the BN is registered under
            parent_name, _, attr = name.rpartition(".")
            setattr(modules[parent_name] if parent_name else model, attr, identity)
        pairs.append((conv_name, bn_name))
    return pairs


def _identity_keeping_hooks(bn: nn.Module) -> nn.Identity:
    """The ``nn.Identity`` that replaces a folded BN, with the BN's forward hooks: a block inserted after the
    BN by a hook (GCNet's after ``bn3``, :func:`~nlzoo.layers.insert_nonlocal`) must keep running."""
    identity = nn.Identity()
    for attr in (
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
    ):
        getattr(identity, attr).update(getattr(bn, attr, {}))
    return identity
