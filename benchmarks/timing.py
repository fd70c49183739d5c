"""Timing helpers shared by the benchmark scripts (imported as ``timing``: scripts run from this folder)."""

from __future__ import annotations

import contextlib
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sync(device: torch.device | str) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(
    fn: Callable[[], object], *, repeats: int, warmup: int = 1, device: torch.device | str = "cpu"
) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones (caches, lazy init)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reset_peak_rss() -> int:
    """Reset this process's RSS high-water mark to its current RSS (Linux ``clear_refs``) and return that RSS.

    Building a model or a block (random init, copies) can peak above the step measured next; without the
    reset the high-water mark hides the step's peak and its growth reads as 0. Elsewhere: the max RSS so far.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
        return _status_bytes("VmRSS")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux and BSD: KiB


def peak_rss() -> int:
    """This process's RSS high-water mark in bytes (since :func:`reset_peak_rss` where Linux allows it)."""
    with contextlib.suppress(OSError):
        return _status_bytes("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")
