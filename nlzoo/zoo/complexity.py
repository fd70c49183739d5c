"""Parameters and FLOPs of registered models, measured on the ``meta`` device (no weights, no arithmetic).

A model built on the meta device (:func:`nlzoo.zoo.meta.build_on_meta`) has the real architecture but no
storage, and a forward pass on it only propagates shapes: the whole zoo (109 models) is counted in about 13 s
on a 2-core Xeon, without memory. (PyTorch runs meta kernels in Python, about 1 ms an op.) That was still 34 s
on a 2-core AMD EPYC Zen 3, so :func:`zoo_complexities` keeps the counts of default-sized models in
``$XDG_CACHE_HOME/nlzoo/complexity.json``, valid for one torch version and one exact nlzoo source tree.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_write_text
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


def zoo_complexities(names: Iterable[str]) -> Iterator[tuple[str, Complexity]]:
    """``(name, measure_complexity(name))`` at each default input, from the cache where the same torch and the same
    nlzoo source (a changed file, even in a checkout, counts again) counted it before. The cache is read once and
    written once, when the iteration ends or stops (so an interrupted listing keeps what it counted)."""
    from ..precision import cache_dir  # the one per-machine cache folder

    path, stamp = cache_dir() / "complexity.json", _package_stamp()
    models, counted = _read_cache(path, stamp), False
    try:
        for name in names:
            try:
                entry = models[name]
                size = Complexity(**{**entry, "input_shape": tuple(entry["input_shape"])})
            except (KeyError, TypeError, ValueError):  # absent or damaged: count it
                size, counted = measure_complexity(name), True
                models[name] = asdict(size)
            yield name, size
    finally:
        if counted:
            with contextlib.suppress(OSError):  # a read-only home only costs counting again next time
                atomic_write_text(path, json.dumps({"stamp": stamp, "models": models}, sort_keys=True))


def _read_cache(path: Path, stamp: str) -> dict[str, Any]:
    """The cached counts if ``path`` holds those of this ``stamp``; else none."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    models = cached.get("models") if isinstance(cached, dict) and cached.get("stamp") == stamp else None
    return models if isinstance(models, dict) else {}


_PACKAGE = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def _package_stamp() -> str:
    """nlzoo's own stamp, hashed once per process (the listing asks for it once per model)."""
    return _source_stamp(_PACKAGE)


def _source_stamp(package: Path) -> str:
    """torch's version and a hash of every source file of ``package`` (nlzoo): what the counts depend on (a few
    ms)."""
    digest = hashlib.sha256(torch.__version__.encode())
    for file in sorted(package.rglob("*.py")):
        digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


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
