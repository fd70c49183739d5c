"""``nlzoo extract-features``: features equal a hand loop over the same windows, resume, bad input."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import nlzoo
from nlzoo.cli import main
from nlzoo.data.clip_sampling import clip_indices
from nlzoo.data.feature_windows import Stride, window_starts
from nlzoo.data.video_io import open_video
from nlzoo.data.video_transforms import EvalViewTransform
from nlzoo.errors import ConfigError

from .tiny import TINY_DATA, write_model, write_videos


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("extract")
    write_model(root / "model")
    write_videos(root / "data", count=3)
    (root / "data" / "videos" / "broken.mp4").write_bytes(b"not a video")
    return {"root": root, "model": root / "model", "data": root / "data"}


def _extract(setup: dict[str, Path], out: Path, *extra: str) -> int:
    args = ["extract-features", str(setup["data"]), "--model", str(setup["model"]), "--out", str(out)]
    return main([*args, "--precision", "fp32", "--num-workers", "0", *extra])


def _index(out: Path) -> list[dict[str, str]]:
    with open(out / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def _hand_loop(model: torch.nn.Module, video: Path, starts: list[int], crops: int, fn) -> np.ndarray:
    """The reference: decode each window, transform it, run the model on it alone."""
    transform = EvalViewTransform(TINY_DATA, num_crops=crops)
    rows = []
    with open_video(video) as reader, torch.no_grad():
        for start in starts:
            idx = clip_indices(start, num_frames=4, sampling_rate=4, video_frames=reader.num_frames)
            rows.append(fn(transform(reader.get_frames(idx))).numpy())
    return np.stack(rows)


def test_features_equal_a_hand_loop_and_bad_files_are_listed(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _extract(setup, out, "--stride", "2", "--batch-size", "1") == 0
    warning = capsys.readouterr().err.strip().splitlines()[-1]
    assert warning.startswith("nlzoo extract-features: warning: 1 of 4 videos could not be read (first: ")
    assert "broken.mp4: " in warning
    model = nlzoo.load(str(setup["model"])).eval()
    video = setup["data"] / "videos" / "train" / "00000.mp4"
    got = np.load(out / "videos" / "train" / "00000.mp4.npy")
    want = _hand_loop(model, video, [0, 2], 1, lambda x: model.forward_head(model.forward_features(x), pre_logits=True))
    assert got.shape == (2, 1, 512)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    rows = _index(out)
    ok = [r for r in rows if r["video"] == str(video)]
    assert [(r["window"], r["start_s"], r["shape"]) for r in ok] == [
        ("0", "0.000000", "1x512"),
        ("1", "0.250000", "1x512"),
    ]
    assert float(ok[0]["end_s"]) == pytest.approx(13 / 8)  # 13 frames at 8 fps
    broken = [r for r in rows if r["video"].endswith("broken.mp4")]
    assert broken[0]["status"] == "error" and "FFmpeg can open" in broken[0]["reason"]


def test_a_named_stage_unpooled_with_three_crops(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _extract(setup, out, "--layer", "layer4", "--no-pool", "--crops", "3", "--format", "both") == 0
    model = nlzoo.load(str(setup["model"])).eval()
    video = setup["data"] / "videos" / "train" / "00001.mp4"
    got = np.load(out / "videos" / "train" / "00001.mp4.npy")
    want = _hand_loop(model, video, [0], 3, model.forward_features)
    assert got.shape == (1, 3, 512, 2, 1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    from safetensors.numpy import load_file

    stored = load_file(out / "videos" / "train" / "00001.mp4.safetensors")
    np.testing.assert_array_equal(stored["features"], got)


def test_short_videos_are_padded_or_skipped(setup: dict[str, Path], tmp_path: Path) -> None:
    model = nlzoo.load(str(setup["model"]))
    model.nlzoo_config.data_config = TINY_DATA.replace(sampling_rate=8)  # a 25-frame window, 16-frame videos
    nlzoo.save_pretrained(model, tmp_path / "long_window")
    args = [str(setup["data"]), "--model", str(tmp_path / "long_window"), "--precision", "fp32", "--num-workers", "0"]
    assert main(["extract-features", *args, "--out", str(tmp_path / "pad")]) == 0
    assert np.load(tmp_path / "pad" / "videos" / "train" / "00000.mp4.npy").shape == (1, 1, 512)
    assert main(["extract-features", *args, "--out", str(tmp_path / "skip"), "--short", "skip"]) == 0
    skipped = [r for r in _index(tmp_path / "skip") if r["status"] == "error"]
    assert sum("shorter than one window (25)" in r["reason"] for r in skipped) == 3  # + the broken file


def test_videos_over_a_limit_are_listed_as_errors(
    setup: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NLZOO_MAX_VIDEO_FRAMES", "10")  # the videos have 16 frames
    assert _extract(setup, tmp_path / "out") == 2  # not one video gave features
    assert "no features written: none of the 4 videos could be read" in capsys.readouterr().err
    rows = [r for r in _index(tmp_path / "out") if not r["video"].endswith("broken.mp4")]
    assert len(rows) == 3 and all(r["status"] == "error" for r in rows)
    assert all(r["reason"].startswith("more than 10 frames, over the limit; ") for r in rows)


def test_missing_listed_files_and_broken_links_are_listed_not_fatal(setup: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(setup["data"] / "videos" / "train" / "00000.mp4", folder / "camcorder.ts")
    (folder / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    args = ["extract-features", str(folder), "--model", str(setup["model"]), "--out", str(tmp_path / "out")]
    assert main([*args, "--precision", "fp32", "--num-workers", "0"]) == 0
    rows = {Path(r["video"]).name: r for r in _index(tmp_path / "out")}
    assert rows["camcorder.ts"]["status"] == "ok"
    assert rows["gone.mp4"]["status"] == "error" and "no such video file" in rows["gone.mp4"]["reason"]
    listed = tmp_path / "list.txt"
    listed.write_text(f"{folder / 'camcorder.ts'}\n{tmp_path / 'typo.mp4'}\n")
    args = ["extract-features", str(listed), "--model", str(setup["model"]), "--out", str(tmp_path / "listed")]
    assert main([*args, "--precision", "fp32", "--num-workers", "0"]) == 0
    rows = {Path(r["video"]).name: r for r in _index(tmp_path / "listed")}
    assert rows["camcorder.ts"]["status"] == "ok" and rows["typo.mp4"]["status"] == "error"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--accelerator", "xyz"], "--accelerator xyz --devices 1 --num_nodes 1: "),
        (["--devices", "0"], "--accelerator auto --devices 0 --num_nodes 1: "),
        (["--out", "{file}/sub"], "cannot create or write this folder ("),
    ],
)
def test_settings_are_checked_before_the_model_loads(
    setup: dict[str, Path], tmp_path: Path, extra: list[str], message: str, capsys, monkeypatch
) -> None:
    import nlzoo.inference.inputs as inputs

    monkeypatch.setattr(inputs, "load", lambda name: pytest.fail("the model was loaded"))
    (tmp_path / "file").write_text("x")
    extra = [arg.replace("{file}", str(tmp_path / "file")) for arg in extra]
    assert _extract(setup, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_input_is_one_line(setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _extract(setup, tmp_path / "o", "--layer", "layr3") == 2
    assert "Did you mean 'layer3'" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert _extract(setup, tmp_path / "file") == 2
    assert "is a file" in capsys.readouterr().err
    assert _extract(setup, tmp_path / "o", "--stride=-2s") == 2
    assert "--stride" in capsys.readouterr().err


def test_stride_parsing() -> None:
    assert Stride.parse("16").in_frames(13, 30.0) == 16
    assert Stride.parse("0.5s").in_frames(13, 30.0) == 15
    assert Stride.parse(None).in_frames(13, 30.0) == 13
    for bad in ("0", "abc", "nans", "-1"):
        with pytest.raises(ConfigError):
            Stride.parse(bad)


@given(frames=st.integers(1, 500), span=st.integers(1, 100), stride=st.integers(1, 100))
def test_windows_fit_and_are_evenly_spaced(frames: int, span: int, stride: int) -> None:
    starts = window_starts(frames, span, stride)
    if frames < span:
        assert starts == [0] and window_starts(frames, span, stride, "skip") == []
        return
    assert starts[0] == 0 and all(s + span <= frames for s in starts)
    assert all(b - a == stride for a, b in itertools.pairwise(starts))
    assert starts[-1] + stride + span > frames  # no further window fits


@pytest.mark.slow
def test_resume_after_a_kill_gives_identical_files(setup: dict[str, Path], tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert _extract(setup, reference, "--stride", "1") == 0
    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "nlzoo.cli", "extract-features", str(setup["data"]), "--model", str(setup["model"])]
    cmd += ["--out", str(out), "--stride", "1", "--precision", "fp32", "--num-workers", "0", "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.rglob("*.mp4.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in out.rglob("*.mp4.json")}
    assert 1 <= len(done_before) < 4, "the kill must land mid-run"
    assert _extract(setup, out, "--stride", "1") == 0
    for ref in reference.rglob("*.npy"):
        assert ref.read_bytes() == (out / ref.relative_to(reference)).read_bytes()
    for ref in reference.rglob("*.mp4.json"):
        assert json.loads(ref.read_text()) == json.loads((out / ref.relative_to(reference)).read_text())
    assert (reference / "index.csv").read_bytes() != b"" and _index(out) == _index(reference)
    assert not list(out.rglob("*.tmp*"))
