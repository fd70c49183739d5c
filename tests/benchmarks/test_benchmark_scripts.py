"""The benchmark scripts still run (their ``--quick`` smoke modes) and report what the README quotes.

Timings are never asserted (they belong to the scripts' ratio tables); what is checked is that a run
completes and its structural facts hold: the NL model counts more FLOPs and parameters than its base,
and the fast variants reproduce the eager outputs.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_quick(name: str, *args: str) -> subprocess.CompletedProcess[str]:
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
    return out


def run_script(name: str, *args: str) -> str:
    return run_quick(name, *args).stdout


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
    # The inference section (issue 18's table): nlzoo's paths against the peer on the same clip.
    for model in report["inference"]:
        paths = {path["path"]: path for path in model["paths"]}
        peer = model["model"].split("_nl")[0]
        library = "timm" if peer.startswith("resnet") else "pytorchvideo"
        assert {f"{library} {peer} fp32", "nlzoo fp32 eager", "nlzoo fp32 prepared", "nlzoo auto"} <= set(paths)
        assert paths["nlzoo fp32 prepared"]["max_rel_diff"] < 1e-4  # folded BN, channels-last: exact up to rounding
        auto = paths["nlzoo auto"]
        assert auto["precision"] in {"fp32", "bf16", "fp16"}
        assert auto["max_rel_diff"] < (1e-4 if auto["precision"] == "fp32" else 5e-2)
        for path in paths.values():
            assert path["ms"] > 0 and path["gflops_per_s"] > 0
            assert path["top1_agrees"] in (None, True)
        assert set(model["gemm_peak_gflops"]) >= {"fp32", auto["precision"]}


def test_predict_video_benchmark_splits_decoding_from_the_model() -> None:
    report = json.loads(run_script("predict_video.py", "--json"))
    assert report["views"] == "2x3" and report["command_s"] > 0 and report["decode_s"] > 0
    assert set(report["model_s"]) == {"auto", "fp32"}
    for precision, share in report["decode_share"].items():
        assert 0.0 < share < 1.0
        assert abs(share - report["decode_s"] / (report["decode_s"] + report["model_s"][precision])) < 1e-6
    assert report["environment"]["auto"] in {"fp32", "bf16", "fp16"}
    large = report["large_video"]
    assert large["same_views"] is True  # resizing while decoding changes no pixel
    assert large["as_decoded"]["max_rss_mb"] > 0 and large["after"]["max_rss_mb"] > 0


def test_image_benchmark_reports_the_overhead_ratio() -> None:
    assert "NL overhead resnet18_nl / resnet18" in run_script("image.py")


def test_load_benchmark_reports_the_target() -> None:
    assert "target < 1 s for a cached model" in run_script("load.py")


def test_demo_seeds_reports_every_model_and_resumes_from_its_log(tmp_path: Path) -> None:
    models = ("--models", "c2d_r18_gc", "c2d_r18", "--baseline", "c2d_r18")
    first = run_quick("demo_seeds.py", *models, "--json")
    report = json.loads(first.stdout)
    assert [r["model"] for r in report["runs"]] == ["c2d_r18_gc", "c2d_r18"]
    assert report["summary"]["c2d_r18"]["gap"]["mean"] == 0.0
    assert report["summary"]["c2d_r18_gc"]["nonlocal_blocks"] == 2
    assert all(0.0 <= r["top1"] <= 1.0 and r["train_s"] > 0 for r in report["runs"])

    log = tmp_path / "first.log"
    log.write_text(first.stderr)
    again = run_quick("demo_seeds.py", *models, "--json", "--resume", str(log))
    assert "seed 0: " not in again.stderr  # nothing trained again
    assert json.loads(again.stdout)["runs"] == report["runs"]


def test_detection_seeds_reports_both_models_for_every_seed_and_resumes(tmp_path: Path) -> None:
    first = run_quick("detection_seeds.py", "--seeds", "0", "--json")
    report = json.loads(first.stdout)
    assert [(r["seed"], r["model"]) for r in report["runs"]] == [(0, "maskrcnn_r18_fpn_nl"), (0, "maskrcnn_r18_fpn")]
    assert report["summary"]["maskrcnn_r18_fpn_nl"]["nonlocal_blocks"] == 1
    assert report["summary"]["maskrcnn_r18_fpn"]["nonlocal_blocks"] == 0
    assert report["summary"]["maskrcnn_r18_fpn"]["gap"]["box AP"]["mean"] == 0.0
    for run in report["runs"]:
        assert set(run["ap"]) == {"box AP", "mask AP"} and all(0.0 <= v <= 100.0 for v in run["ap"].values())
        assert run["train_s"] > 0 and run["eval_s"] > 0 and run["steps"] == 1

    # Resumed from a log of seed 0 and of seed 1's non-local run (seed 0's, relabelled, to save a training): only
    # seed 1's baseline trains, and the table holds both models with one value per seed.
    lines = [line for line in first.stderr.splitlines() if line.startswith("seed 0: ")]
    log = tmp_path / "first.log"
    log.write_text("\n".join([*lines, lines[0].replace("seed 0: ", "seed 1: ").replace('"seed": 0', '"seed": 1')]))
    again = run_quick("detection_seeds.py", "--seeds", "0", "1", "--resume", str(log))
    trained = [line for line in again.stderr.splitlines() if line.startswith("seed ")]
    assert len(trained) == 1 and trained[0].startswith('seed 1: {"seed": 1, "model": "maskrcnn_r18_fpn",')
    rows = {line.split(" | ")[0]: line.split(" | ") for line in again.stdout.splitlines() if line.startswith("| `")}
    assert set(rows) == {"| `maskrcnn_r18_fpn_nl`", "| `maskrcnn_r18_fpn`"}
    header = next(line for line in again.stdout.splitlines() if line.startswith("| model")).split(" | ")
    assert "box AP (mean ± std)" in header and "mask AP (mean ± std)" in header
    for cells in rows.values():
        per_seed = [cells[i] for i, name in enumerate(header) if name == "per seed"]
        assert len(per_seed) == 2 and all(len(values.split(" / ")) == 2 for values in per_seed)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="flushing subnormals needs x86 SSE3")
def test_nonlocal_block_benchmark_times_both_sides_with_subnormals_flushed() -> None:
    rows = json.loads(
        run_quick("nonlocal_block.py", "--only", "gaussian", "--repeats", "1", "--json", "--flush-denormal").stdout
    )
    assert [(r["instantiation"], r["subsample"]) for r in rows] == [("gaussian", False), ("gaussian", True)]
    assert all(r["nlzoo_ms"] > 0 and r["reference_ms"] > 0 and not r["note"] for r in rows)
