"""The non-local family on one footing: every preset of nlzoo.layers at the paper's places.

For a ResNet-50 res4 map in 2D (C=1024, 14x14 and 56x56) and I3D R50 res3 / res4 maps in 3D (C=512, 4x28x28;
C=1024, 4x14x14), batch 2, fp32: forward+backward time (median, the implementations' steps interleaved in one
process) and peak memory (max-RSS growth in a fresh process per measurement) of each preset, against

* the paper's embedded-Gaussian block (preset ``nonlocal``: subsampled keys) at the same place, and
* the preset's straightforward reference: its paper's formula materialised (tests/layers/reference*.py: N x N
  maps, the N x N masked map for criss-cross, pooled embeddings for ANN, explicit heads for efficient).

FLOPs (forward + backward, a multiply-add = 2) come from torch's FlopCounterMode with nlzoo's CPU-SDPA formulas;
elementwise work (softmax, norms) is not counted.

    python benchmarks/family.py [--quick] [--repeats 5] [--only gc,dnl]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from timing import peak_rss, reset_peak_rss
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' reference formulas

from nlzoo.layers import build_block
from nlzoo.models.flops import extra_formulas
from tests.layers.reference import reference_forward
from tests.layers.reference_family import REFERENCES

PRESETS = ("nonlocal", "gc", "dnl", "ann_apnb", "criss_cross", "efficient")
REFERENCE = {"nonlocal": reference_forward, **REFERENCES}


@dataclass(frozen=True)
class Case:
    name: str
    channels: int
    positions: tuple[int, ...]
    batch: int = 2


CASES = (
    Case("R50 res4 2D 14x14", 1024, (14, 14)),
    Case("R50 res4 2D 56x56", 1024, (56, 56)),
    Case("I3D res3 4x28x28", 512, (4, 28, 28)),
    Case("I3D res4 4x14x14", 1024, (4, 14, 14)),
)
QUICK_CASES = (Case("quick 2D 8x8", 32, (8, 8)), Case("quick 3D 2x6x6", 32, (2, 6, 6)))


def _setup(case: Case, preset: str, impl: str):
    """One forward+backward step of ``preset`` (impl "fast") or its reference (impl "reference")."""
    torch.manual_seed(0)
    block = build_block(preset, case.channels, dims=len(case.positions))
    with torch.no_grad():  # non-zero "zero-init" parameters, so every term reaches the output
        for p in block.parameters():
            if not p.any():
                p.normal_(0, 0.1)
    run = block if impl == "fast" else (lambda x: REFERENCE[preset](block, x))
    x = torch.randn(case.batch, case.channels, *case.positions, requires_grad=True)

    def step() -> None:
        block.zero_grad(set_to_none=True)
        x.grad = None
        run(x).square().mean().backward()

    small = torch.randn(case.batch, case.channels, *(max(2, s // 2) for s in case.positions))
    run(small).square().mean().backward()  # warm-up (libraries, kernels) below the measured peak
    return block, step


def measure_memory(case: Case, preset: str, impl: str) -> dict:
    _, step = _setup(case, preset, impl)
    base = reset_peak_rss()
    step()
    return {"peak_bytes": max(peak_rss() - base, 0)}


def measure_time(case: Case, preset: str, repeats: int) -> dict:
    """Median step time of the preset, its reference and the paper's block, steps interleaved."""
    steps = {"fast": _setup(case, preset, "fast")[1], "reference": _setup(case, preset, "reference")[1]}
    if preset != "nonlocal":
        steps["nonlocal"] = _setup(case, "nonlocal", "fast")[1]
    for step in steps.values():
        step()  # warm-up at the measured size
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def count_flops(case: Case, preset: str) -> int:
    _, step = _setup(case, preset, "fast")
    with FlopCounterMode(display=False, custom_mapping=extra_formulas()) as counter:
        step()
    return int(counter.get_total_flops())


def _isolated(args: argparse.Namespace, flag: str, spec: str) -> dict:
    cmd = [sys.executable, __file__, flag, spec, "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated presets")
    parser.add_argument("--_memory", default="", help=argparse.SUPPRESS)
    parser.add_argument("--_time", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    if args._memory:
        index, preset, impl = args._memory.split(",")
        print(json.dumps(measure_memory(cases[int(index)], preset, impl)))
        return
    if args._time:
        index, preset = args._time.split(",")
        print(json.dumps(measure_time(cases[int(index)], preset, args.repeats)))
        return
    chosen = [p for p in PRESETS if not args.only or p in args.only.split(",")]
    print(
        "| map | preset | ms | vs NL block | vs reference | MB | vs NL block | reference MB | GFLOP | vs NL block |\n"
        "|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    nl: dict[int, dict] = {}
    for index, case in enumerate(cases):
        for preset in chosen if "nonlocal" in chosen else ["nonlocal", *chosen]:
            t = _isolated(args, "--_time", f"{index},{preset}")
            mem = _isolated(args, "--_memory", f"{index},{preset},fast").get("peak_bytes")
            ref_mem = _isolated(args, "--_memory", f"{index},{preset},reference").get("peak_bytes")
            flops = count_flops(case, preset)
            if preset == "nonlocal":
                nl[index] = {"ms": t.get("fast"), "mb": mem, "flops": flops}
            base = nl[index]
            t_nl = t.get("nonlocal", t.get("fast"))

            def ratio(a: float | None, b: float | None) -> str:
                return "-" if not a or not b else f"{a / b:.2f}x"

            ms = t.get("fast")
            print(
                f"| {case.name} | {preset} | {'-' if ms is None else f'{1e3 * ms:.1f}'} | {ratio(ms, t_nl)} | "
                f"{ratio(t.get('reference'), ms)} faster | {'-' if mem is None else f'{mem / 2**20:.0f}'} | "
                f"{ratio(mem, base['mb'])} | {'-' if ref_mem is None else f'{ref_mem / 2**20:.0f}'} | "
                f"{flops / 1e9:.2f} | {ratio(flops, base['flops'])} |" + (f" {t['error']}" if "error" in t else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
