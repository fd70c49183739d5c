"""Insert non-local blocks after named submodules of any ``nn.Module`` (timm, torchvision, nlzoo models).

A block goes *after* the named submodule, as in the authors' code (after residual block ``i`` of a stage).
State-dict keys of the host model are untouched, so its pretrained weights still load by key:

* in an ``nn.Sequential`` (a ResNet stage) the block becomes a new entry right after the child, named
  ``"<child>_nonlocal"`` (``layer3.1`` -> ``layer3.1_nonlocal``);
* elsewhere it is registered beside the child under the same name and applied by a forward hook. Naming a
  layer *inside* a residual block places the block there: ``layer2.0.bn3`` -> ``layer2.0.bn3_nonlocal`` runs on
  ``bn3``'s output, before the identity is added (mmdetection's GCNet plugin position ``after_conv3``).
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import UnknownNameError
from .nonlocal_block import NonLocalBlock
from .presets import build_block

SUFFIX = "_nonlocal"


class _ApplyBlock:
    """Forward hook running ``block`` on a module's output (a picklable class, not a closure)."""

    def __init__(self, block: NonLocalBlock) -> None:
        self.block = block

    def __call__(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return self.block(output)


def insert_nonlocal(
    model: nn.Module,
    after: Sequence[str],
    *,
    block: str = "nonlocal",
    channels: int | Mapping[str, int] | None = None,
    example_input: torch.Tensor | None = None,
    dims: int | None = None,
    **block_args: Any,
) -> nn.Module:
    """Place a block of the non-local family after each named submodule and return ``model`` (modified in place).

    Channels are read from each submodule's output: from ``channels`` if given, else by running
    ``example_input`` through the model once (exact for any architecture), else from the last module
    inside it that declares ``out_channels`` / ``num_features`` (right for ResNet-style blocks).

    Args:
        model: any module.
        after: dotted submodule names, e.g. ``["layer3.1", "layer3.3"]``.
        block: a preset of :mod:`nlzoo.layers.presets` (``"nonlocal"``, the paper's block; ``"gc"``, ``"dnl"``,
            ``"ann_apnb"``, ``"criss_cross"``, ``"efficient"``).
        channels: output channels, one int for all or a mapping name -> channels.
        example_input: an input for one probing forward pass (no grad) that measures channels and rank.
        dims: positional dims of the features (1, 2 or 3); default from the probe or the model's convs.
        **block_args: :class:`NonLocalBlock` arguments on top of the preset's (``instantiation``, ``subsample``,
            ``norm``, ``fusion_args``, ...).

    Raises:
        UnknownNameError: a name is not a submodule or not a preset (the message lists close matches).
        KeyError: a submodule already has a block.
        ConfigError: the arguments make no sense for the preset (nothing is inserted then).
        ValueError: channels or dims cannot be determined.

    Example:
        >>> import timm
        >>> m = insert_nonlocal(timm.create_model("resnet18"), ["layer3.0"], dims=2)
        >>> type(m.layer3[1]).__name__
        'NonLocalBlock'
    """
    if isinstance(after, str):
        after = [after]
    modules = dict(model.named_modules())
    for name in after:
        if name not in modules or name == "":
            close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.6)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            raise UnknownNameError(f"{type(model).__name__} has no submodule {name!r}.{hint}")
        parent_name, _, child = name.rpartition(".")
        if child + SUFFIX in modules[parent_name]._modules:
            raise KeyError(f"{name!r} already has a non-local block ({name + SUFFIX!r})")

    probed = _probe(model, after, example_input) if example_input is not None else {}
    if dims is None:
        dims = probed[after[0]][1] if probed else _infer_dims(model)
    built = []  # every block first, so that a bad argument leaves the model untouched
    for name in after:
        new = build_block(block, _channels_for(name, modules[name], channels, probed), dims=dims, **block_args)
        ref = next(modules[name].parameters(), None)
        if ref is not None:
            new.to(device=ref.device, dtype=ref.dtype)
        built.append((name, new))
    for name, new in built:
        _attach(model, name, new)
    return model


def nonlocal_blocks(model: nn.Module) -> Iterator[tuple[str, NonLocalBlock]]:
    """``(name, block)`` for every non-local block in ``model``, in registration order."""
    for name, m in model.named_modules():
        if isinstance(m, NonLocalBlock):
            yield name, m


def _attach(model: nn.Module, name: str, block: NonLocalBlock) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    if isinstance(parent, nn.Sequential):
        entries = OrderedDict()
        for key, module in parent._modules.items():
            entries[key] = module
            if key == child:
                entries[child + SUFFIX] = block
        parent._modules = entries
    else:
        parent.add_module(child + SUFFIX, block)
        parent.get_submodule(child).register_forward_hook(_ApplyBlock(block))


def _probe(model: nn.Module, names: Sequence[str], example_input: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Channels and positional dims of each named submodule's output, from one forward pass."""
    found: dict[str, tuple[int, int]] = {}
    handles = []
    for name in names:

        def hook(module: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if not isinstance(out, torch.Tensor) or out.dim() < 3:
                raise ValueError(f"{name!r} outputs {type(out).__name__}, not a (B, C, ...) feature tensor")
            found[name] = (out.shape[1], out.dim() - 2)

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"the probing forward pass never ran {missing}; check the names or pass channels=")
    return found


def _channels_for(
    name: str, module: nn.Module, channels: int | Mapping[str, int] | None, probed: dict[str, tuple[int, int]]
) -> int:
    if isinstance(channels, int):
        return channels
    if isinstance(channels, Mapping) and name in channels:
        return int(channels[name])
    if name in probed:
        return probed[name][0]
    for m in reversed(list(module.modules())):
        for attr in ("out_channels", "num_features", "out_features"):
            value = getattr(m, attr, None)
            if isinstance(value, int):
                return value
    raise ValueError(f"cannot infer the output channels of {name!r}; pass channels= or example_input=")


def _infer_dims(model: nn.Module) -> int:
    for m in model.modules():
        for cls, d in ((nn.Conv3d, 3), (nn.Conv2d, 2), (nn.Conv1d, 1)):
            if isinstance(m, cls):
                return d
    raise ValueError("cannot infer the feature dims (no Conv1d/2d/3d found); pass dims= or example_input=")
