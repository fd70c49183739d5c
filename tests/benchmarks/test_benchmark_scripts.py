"""The benchmark scripts still run (their ``--quick`` smoke modes) and report what the README quotes.

Timings are never asserted (they belong to the scripts' ratio tables); what is checked is that a run
completes and its structural facts hold: the NL model counts more FLOPs and parameters than its base,
and the fast variants reproduce the eager outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_script(name: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)}
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), "--quick", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_models_benchmark_counts_the_nonlocal_flops() -> None:
    report = json.loads(run_script("models.py", "--json"))
    rows = {row["name"]: row for row in report["models"]}
    base, nl = rows["i3d_r18"], rows["i3d_r18_nl"]
    assert nl["infer_gflops"] > base["infer_gflops"] and nl["params_m"] > base["params_m"]
    assert base["nl_flop_share"] == 0.0 and 0.0 < nl["nl_flop_share"] < 0.1
    assert report["environment"]["matmul_peak_gflops"] > 0
    for row in rows.values():
        for variant in row["variants"].values():
            assert variant["max_abs_diff"] < 1e-4


def test_image_benchmark_reports_the_overhead_ratio() -> None:
    assert "NL overhead resnet18_nl / resnet18" in run_script("image.py")


def test_load_benchmark_reports_the_target() -> None:
    assert "target < 1 s for a cached model" in run_script("load.py")
