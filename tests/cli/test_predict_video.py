"""``nlzoo predict-video``: top-k labels with scores that are the view-averaged softmax of the model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from nlzoo.cli import main
from nlzoo.inference.inputs import read_video_views
from tests.cli.tiny import TINY_DATA, write_model, write_videos


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, Path]:
    root = tmp_path_factory.mktemp("predict")
    model = write_model(root / "model")
    return model, root / "model", write_videos(root / "data", count=1)[0]


def _rows(text: str) -> list[tuple[int, str, float]]:
    cells = re.findall(r"│\s*\d+\s*│\s*(\d+)\s*│\s*(\w+)\s*│\s*([\d.]+)", text)
    return [(int(c), name, float(s)) for c, name, s in cells]


def test_scores_are_the_mean_softmax_over_the_requested_views(setup, capsys: pytest.CaptureFixture[str]) -> None:
    model, folder, video = setup
    argv = ["predict-video", str(video), "--model", str(folder), "--views", "2x3", "--device", "cpu"]
    assert main([*argv, "--precision", "fp32"]) == 0
    rows = _rows(capsys.readouterr().out)
    views = read_video_views(video, TINY_DATA, num_clips=2, num_crops=3)
    assert views.shape == (6, 3, 4, 32, 32)
    with torch.no_grad():
        expected = model(views).softmax(-1).mean(0)
    assert [r[0] for r in rows] == expected.argsort(descending=True).tolist()  # both classes, best first
    assert [r[1] for r in rows] == [("different_colour", "same_colour")[i] for i in expected.argsort(descending=True)]
    assert [r[2] for r in rows] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-4)


@pytest.mark.parametrize(("frames", "warned"), [(1, True), (12, True), (13, False)])  # one clip spans 13 frames
def test_a_video_shorter_than_one_clip_is_said_to_be(
    setup, tmp_path: Path, frames: int, warned: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.data.video_files import write_numbered_video

    _, folder, _ = setup
    video = write_numbered_video(tmp_path / "short.mp4", frames)
    assert main(["predict-video", str(video), "--model", str(folder), "--views", "1x1", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    expected = f"nlzoo predict-video: warning: {video} has {frames} frame{'s' * (frames > 1)}, fewer than the 13"
    assert (expected in err) == warned, err


def test_default_views_come_from_the_model_and_top_k_limits_rows(setup, capsys: pytest.CaptureFixture[str]) -> None:
    _, folder, video = setup
    assert main(["predict-video", str(video), "--model", str(folder), "--top-k", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "2x3 views" in out and len(_rows(out)) == 1


def test_json_holds_the_tables_rows(setup, capsys: pytest.CaptureFixture[str]) -> None:
    _, folder, video = setup
    argv = ["predict-video", str(video), "--model", str(folder), "--device", "cpu", "--precision", "fp32"]
    assert main(argv) == 0
    rows = _rows(capsys.readouterr().out)
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)  # the whole of stdout: one JSON object, no table or header
    assert {k: report[k] for k in ("input", "model", "views")} == {
        "input": str(video),
        "model": "c2d_r18_nl",
        "views": "2x3",
    }
    assert [(r["rank"], r["class"], r["label"]) for r in report["top_k"]] == [
        (i + 1, c, n) for i, (c, n, _) in enumerate(rows)
    ]
    assert [r["score"] for r in report["top_k"]] == pytest.approx([s for _, _, s in rows], abs=5e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.mp4", "--model", "{folder}"], "missing.mp4: no such video file"),
        (["{video}", "--model", "c2d_r18_nl.kinetics400"], "unknown tag 'kinetics400'"),
        (["{video}", "--model", "i3d_r50_nl.kinetics400"], "nlzoo convert"),
    ],
)
def test_errors_are_one_line_with_a_hint(setup, argv, message, capsys: pytest.CaptureFixture[str]) -> None:
    _, folder, video = setup
    argv = [a.format(folder=folder, video=video) for a in argv]
    assert main(["predict-video", *argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("nlzoo predict-video: error:")
