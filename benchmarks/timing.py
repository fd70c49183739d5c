"""Timing helpers shared by the benchmark scripts (imported as ``timing``: scripts run from this folder)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

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
