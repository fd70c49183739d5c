"""The one place that decides the numeric precision of inference (``--precision auto|fp32|bf16|fp16``).

``auto`` is bf16 autocast where bf16 is faster than fp32 on the device, fp16 autocast on CUDA devices with
fp16 tensor cores but no bf16, and fp32 elsewhere. It is decided by detection, never assumed:

* CUDA: bf16 on devices with native bf16 (compute capability 8.0+), fp16 on 7.x, fp32 below.
* CPU with AMX-BF16 (Xeon Sapphire Rapids+): bf16, 2-3x faster than fp32 in convolutions.
* CPU with AVX512-BF16 but no AMX (AMD Zen 4+, Cooper Lake): bf16 only halves the instruction count of
  a dot product, so whether it pays depends on the core and the oneDNN build (on one Xeon without AMX it
  was 1.7x slower). A one-time micro-benchmark (an I3D bottleneck in both precisions, about 0.1 s) decides,
  and its verdict is cached in ``$XDG_CACHE_HOME/nlzoo/precision.json`` (default ``~/.cache``), keyed by
  CPU model, family, bf16 flags, torch version and thread count.
  bf16 must be clearly faster (by ``_MIN_SPEEDUP``), so that noise can never make ``auto`` slower than fp32.
* Any other CPU or device: fp32.

An explicit ``bf16`` or ``fp16`` on a CPU without matrix instructions for it still runs (the user asked), but
emulated: i3d_r50_nl took 57 s per clip in bf16 against 0.73 s in fp32 on an AMD EPYC Zen 3 (AVX2 only), so
it raises a :class:`SlowPrecisionWarning` saying so and what to use instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

from .errors import ConfigError
from .files import atomic_write_text

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_MIN_SPEEDUP = 1.15  # bf16 must beat fp32 by this factor in the micro-benchmark to be chosen
_BENCHMARK_VERSION = "bottleneck-reordered-relu"  # change when the micro-benchmark changes: old verdicts are ignored


def _cpuinfo_field(*names: str) -> str:
    """The first ``/proc/cpuinfo`` value among ``names`` (empty where the file or the field does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in names:
                    return value.strip()
    except OSError:
        pass
    return ""


# Read once at import (a small file). A plain global, not an lru_cache: the attention cost model reads the flags
# inside compiled graphs, where dynamo folds a global into a constant but warns on (and traces) an lru_cache.
# (torch.compiler.assume_constant_result would do too, but it imports dynamo: 1-3 s on every nlzoo import.)
_CPU_FLAGS = frozenset(_cpuinfo_field("flags", "Features").split())


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (``/proc/cpuinfo``; empty where that file does not exist)."""
    return _CPU_FLAGS


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string elsewhere."""
    import platform

    return _cpuinfo_field("model name", "Hardware") or platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (Intel AMX-BF16, or AVX512-BF16 on Intel / AMD Zen 4+)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def cpu_has_fp16() -> bool:
    """Whether this CPU has fp16 matrix instructions (AVX512-FP16 or AMX-FP16); without them PyTorch's CPU fp16
    matrix products take a slow generic path (non-local attention as two fp16 products ran 30x slower than the
    fused kernel on an AMD EPYC Zen 5)."""
    return bool({"amx_fp16", "avx512_fp16"} & cpu_flags())


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU has AMX tiles for bf16 (their own matrix unit: bf16 always pays there)."""
    return "amx_bf16" in cpu_flags()


def cuda_precision(device: torch.device) -> str:
    """bf16 on CUDA devices with native bf16 (sm 8.0+), fp16 on those with fp16 tensor cores (7.x), else fp32."""
    major, _ = torch.cuda.get_device_capability(device)
    if major >= 8 and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16"
    return "fp16" if major >= 7 else "fp32"


def cache_dir() -> Path:
    """nlzoo's per-machine cache folder: ``$XDG_CACHE_HOME/nlzoo`` (default ``~/.cache/nlzoo``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nlzoo"


def _benchmark_key() -> str:
    """What the micro-benchmark's verdict depends on. Virtual machines often report a bare "Intel(R) Xeon(R)
    Processor" for cores with and without AMX, so the family, model and bf16 flags are part of it; so are the
    thread count and the benchmark's own version (verdicts of an earlier benchmark are not reused)."""
    family, model = _cpuinfo_field("cpu family"), _cpuinfo_field("model")
    units = ",".join(sorted({"amx_bf16", "avx512_bf16"} & cpu_flags())) or "none"
    return (
        f"{cpu_model()} (family {family or '?'}, model {model or '?'}, {units}) | torch {torch.__version__}"
        f" | {torch.get_num_threads()} threads | {_BENCHMARK_VERSION}"
    )


def measure_cpu_bf16_speedup(*, rounds: int = 5) -> float:
    """fp32 time / bf16 time of an I3D bottleneck (3x1x1, 1x3x3 and 1x1x1 convolutions with their ReLUs, 256 ->
    64 -> 256 channels, 4x28x28, channels-last), each precision as prepared models run it
    (:mod:`nlzoo.models.conv_backend`): one oneDNN convolution per layer with its weight reordered beforehand and
    the ReLU as a post-op (on CPUs whose oneDNN has no bf16 kernels, bf16 runs PyTorch's emulated convolution,
    as prepared models do there).

    Measuring anything else misleads: against PyTorch's own batch-1 rule, which sends this size to a slower
    native fp32 kernel, ``auto`` once picked bf16 on a Xeon where bf16 ran the whole network 1.2x slower than
    fp32. The two precisions are timed in alternation and each keeps its best round, so load from other
    processes hits both alike.
    """
    cl, unit = torch.channels_last_3d, [1, 1, 1]
    x = torch.randn(1, 256, 4, 28, 28).contiguous(memory_format=cl)
    shapes = [(256, 64, (3, 1, 1), [1, 0, 0]), (64, 64, (1, 3, 3), [0, 1, 1]), (64, 256, (1, 1, 1), [0, 0, 0])]
    # where oneDNN has no bf16 kernels (no AVX512-BW/VL/DQ), prepared models run PyTorch's emulated convolution
    onednn = {torch.float32: True, torch.bfloat16: torch.ops.mkldnn._is_mkldnn_bf16_supported()}
    layers = {}
    for dtype in onednn:
        layers[dtype] = []
        for cin, cout, kernel, padding in shapes:
            weight = torch.randn(cout, cin, *kernel, dtype=dtype).contiguous(memory_format=cl)
            if onednn[dtype]:
                size = [1, cin, 4, 28, 28]
                weight = torch.ops.mkldnn._reorder_convolution_weight(weight, padding, unit, unit, 1, size)
            layers[dtype].append((weight, torch.zeros(cout, dtype=dtype), padding))

    def bottleneck(dtype: torch.dtype) -> torch.Tensor:
        y = x.to(dtype)
        for weight, bias, padding in layers[dtype]:
            if onednn[dtype]:
                y = torch.ops.mkldnn._convolution_pointwise(y, weight, bias, padding, unit, unit, 1, "relu", [], "")
            else:
                y = torch.relu_(torch.nn.functional.conv3d(y, weight, bias, padding=padding))
        return y

    best = dict.fromkeys(layers, float("inf"))
    with torch.inference_mode():
        for round_ in range(rounds + 1):  # round 0 warms up both (oneDNN picks and caches its kernels)
            for dtype in best:
                start = time.perf_counter()
                bottleneck(dtype)
                elapsed = time.perf_counter() - start
                if round_:
                    best[dtype] = min(best[dtype], elapsed)
    return best[torch.float32] / best[torch.bfloat16]


@functools.lru_cache(maxsize=1)
def cpu_bf16_pays() -> bool:
    """Whether bf16 autocast is faster than fp32 on this CPU (see the module docstring for how it is decided)."""
    if not cpu_has_bf16() or not torch.backends.mkldnn.is_available():
        return False
    if cpu_has_amx_bf16():
        return True
    path, key = cache_dir() / "precision.json", _benchmark_key()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict):
        cached = {}
    entry = cached.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("bf16_speedup"), float):
        return entry["bf16_speedup"] >= _MIN_SPEEDUP
    speedup = measure_cpu_bf16_speedup()
    cached[key] = {"bf16_speedup": speedup, "threads": torch.get_num_threads()}
    with contextlib.suppress(OSError):  # a read-only home only costs the benchmark again next time
        atomic_write_text(path, json.dumps(cached, indent=1, sort_keys=True))
    return speedup >= _MIN_SPEEDUP


class SlowPrecisionWarning(UserWarning):
    """A half precision was asked for on a CPU that has no matrix instructions for it (it runs emulated)."""


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``auto`` -> the concrete precision (``fp32``, ``bf16`` or ``fp16``) for ``device``; others pass through,
    with a :class:`SlowPrecisionWarning` where the CPU has no instructions for them.

    Raises:
        ConfigError: an unknown precision name.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if precision != "auto":
        native = {"bf16": cpu_has_bf16, "fp16": cpu_has_fp16}.get(precision)
        if device.type == "cpu" and native is not None and not native():
            measured = " (i3d_r50_nl in bf16: 78x on an AMD EPYC without them)" if precision == "bf16" else ""
            warnings.warn(
                f"precision {precision} on this CPU ({cpu_model()}) runs emulated, without {precision} matrix"
                f" instructions: many times slower than fp32{measured}; use precision auto (--precision auto),"
                f" which picks {resolve_precision('auto', device)} here",
                SlowPrecisionWarning,
                stacklevel=1,  # one place, so Python's default filter shows it once per process
            )
        return precision
    if device.type == "cuda":
        return cuda_precision(device)
    if device.type == "cpu":
        return "bf16" if cpu_bf16_pays() else "fp32"
    return "fp32"


def autocast_dtype(precision: str, device: str | torch.device = "cpu") -> torch.dtype | None:
    """The autocast dtype ``precision`` resolves to on ``device`` (``None`` for fp32: no autocast)."""
    return _DTYPES[resolve_precision(precision, device)]


def active_autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs lower-precision ops in on ``device_type`` now, or ``None`` outside autocast (and
    for devices without autocast, such as ``meta``)."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


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
