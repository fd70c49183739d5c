"""The one place that decides the numeric precision of inference (``--precision auto|fp32|bf16|fp16``).

``auto`` is bf16 autocast where the hardware has bf16 matrix units (CPUs with AMX or AVX512-BF16; CUDA devices
that support bf16), fp16 autocast on CUDA devices without bf16, and fp32 elsewhere. Detection reads the CPU
flags rather than assuming the machine: nlzoo runs on Xeons with AMX and on EPYCs without.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Literal

import torch

from .errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (``/proc/cpuinfo``; empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (Intel AMX-BF16, or AVX512-BF16 on Intel / AMD Zen 4+)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``auto`` -> the concrete precision (``fp32``, ``bf16`` or ``fp16``) for ``device``; others pass through.

    Raises:
        ConfigError: an unknown precision name.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


@contextlib.contextmanager
def inference_precision(precision: str, device: str | torch.device = "cpu") -> Iterator[str]:
    """Run the block under the resolved precision's autocast (nothing for fp32); yields the resolved name."""
    resolved = resolve_precision(precision, device)
    dtype = _DTYPES[resolved]
    if dtype is None:
        yield resolved
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=dtype):
        yield resolved
