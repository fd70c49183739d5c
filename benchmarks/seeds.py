"""What the over-seeds comparisons share (imported as ``seeds``: scripts run from this folder).

A comparison trains every model on every seed; each finished run is one JSON object, printed to stderr as a
``seed S: {json}`` line the moment it ends, so an interrupted or split invocation can be continued with
``--resume LOG`` (the same settings): runs found in the logs are reused and only the missing ones train.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

Run = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every comparison takes: ``--seeds``, ``--out``, ``--resume``, ``--json``, ``--quick``."""
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2 (with --quick: 0)")
    parser.add_argument("--out", type=Path, help="keep data, logs and models here (default: a temporary folder)")
    parser.add_argument("--resume", type=Path, nargs="+", default=[], help="stderr logs of earlier runs to reuse")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--quick", action="store_true", help="smoke settings, seed 0 unless given (measures nothing)")


def chosen_seeds(args: argparse.Namespace) -> list[int]:
    """``--seeds``, else 0, 1, 2 (0 alone with ``--quick``)."""
    return args.seeds or ([0] if args.quick else [0, 1, 2])


def summary(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """What the timings depend on: torch, its threads, the CPU and how busy the machine was."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "load_average": os.getloadavg(),
    }


def logged_runs(log: Path) -> list[Run]:
    """The runs an earlier invocation printed to stderr (``seed S: {json}`` lines)."""
    runs = []
    for line in log.read_text().splitlines():
        if line.startswith("seed ") and ": {" in line:
            runs.append(json.loads(line.split(": ", 1)[1]))
    return runs


@contextlib.contextmanager
def output_root(out: Path | None) -> Iterator[Path]:
    """``out``, or a temporary folder removed afterwards."""
    if out is not None:
        yield out
        return
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch)


def run_all(
    seeds: Sequence[int],
    models: Sequence[str],
    train: Callable[[int, str], Run],
    *,
    resume: Sequence[Path] = (),
    prepare: Callable[[int], None] | None = None,
) -> list[Run]:
    """Every (seed, model) run, seed by seed: from the ``resume`` logs where there, else ``train(seed, model)``.

    ``prepare(seed)`` runs once before a seed's first training (e.g. writing its data), and not at all for a seed
    whose runs are all in the logs. Each new run is printed to stderr as a ``seed S: {json}`` line.
    """
    done = {(r["seed"], r["model"]): r for log in resume for r in logged_runs(log)}
    runs: list[Run] = []
    for seed in seeds:
        if prepare is not None and any((seed, model) not in done for model in models):
            prepare(seed)
        for model in models:
            if (seed, model) in done:
                runs.append(done[seed, model])
                continue
            runs.append({"seed": seed, "model": model, **train(seed, model)})
            print(f"seed {seed}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    return runs


def per_seed(runs: Sequence[Run], model: str, value: Callable[[Run], float], fmt: str = "{:.1f}") -> str:
    """One model's values in seed order, ``a / b / c``."""
    mine = sorted((r for r in runs if r["model"] == model), key=lambda r: r["seed"])
    return " / ".join(fmt.format(value(r)) for r in mine)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
