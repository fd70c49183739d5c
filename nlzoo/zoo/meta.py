"""Models built on the ``meta`` device without running their weight initialisers.

A builder run under ``torch.device("meta")`` gives the real architecture with no storage, but it still runs
every initialiser (``kaiming_normal_``, ``trunc_normal_``, ...) through PyTorch's Python meta kernels, for
values that do not exist: about a third of the time ``nlzoo models`` spent per model. Loading weights into a
meta-built model (:func:`nlzoo.load`) and counting FLOPs skip that work here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# Tensor methods that only write values (random or constant fills); whole torch.nn.init functions are skipped too.
_FILL_METHODS = frozenset(
    {"normal_", "uniform_", "fill_", "zero_", "erfinv_", "exponential_", "log_normal_", "cauchy_", "random_"}
)


class _SkipMetaInit(TorchFunctionMode):
    """Return a meta tensor unchanged from any call that would only fill it with values."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        target = args[0] if args else None
        fills = getattr(func, "__module__", None) == "torch.nn.init" or getattr(func, "__name__", None) in _FILL_METHODS
        if fills and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **(kwargs or {}))


def build_on_meta(builder: Callable[..., nn.Module], **kwargs: Any) -> nn.Module:
    """``builder(**kwargs)`` on the meta device, its initialisers skipped (the architecture is the same)."""
    with torch.device("meta"), _SkipMetaInit():
        return builder(**kwargs)
