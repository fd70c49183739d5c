"""``--precision`` on every inference command: it reaches the forward pass, and bad values are refused."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import pytest

import nlzoo
import nlzoo.cli.predict_image
import nlzoo.inference.pose
import nlzoo.models.inference
import nlzoo.precision
from nlzoo.cli import main
from nlzoo.data import generate_synthetic_pose
from tests.cli.tiny import write_model, write_videos


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("precision")
    write_model(root / "model")
    return root / "model", write_videos(root / "data", count=1)[0]


def _spy(monkeypatch: pytest.MonkeyPatch, module: object) -> list[str]:
    """Record the precision each forward pass of ``module``'s inference_precision is asked for."""
    asked: list[str] = []
    real = nlzoo.precision.inference_precision

    @contextlib.contextmanager
    def spy(precision: str, device: object = "cpu"):
        asked.append(precision)
        with real(precision, device) as resolved:
            yield resolved

    monkeypatch.setattr(module, "inference_precision", spy)
    return asked


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_predict_video_runs_every_batch_at_the_chosen_precision(setup, monkeypatch, capsys, precision) -> None:
    folder, video = setup
    asked = _spy(monkeypatch, nlzoo.models.inference)
    argv = ["predict-video", str(video), "--model", str(folder), "--views", "2x3", "--batch-size", "4"]
    assert main([*argv, "--device", "cpu", "--precision", precision]) == 0
    assert asked == [precision, precision]  # 6 views in batches of 4
    assert "same_colour" in capsys.readouterr().out


def test_explain_and_predict_image_take_the_flag(setup, monkeypatch, tmp_path, capsys) -> None:
    folder, video = setup
    asked = _spy(monkeypatch, nlzoo.precision)
    argv = ["explain", str(video), "--model", str(folder), "--out", str(tmp_path), "--num-queries", "1"]
    assert main([*argv, "--device", "cpu", "--precision", "bf16"]) == 0
    assert asked == ["bf16"]
    image = generate_synthetic_pose(tmp_path / "pose", splits=(("val", 1),), image_size=(64, 48))
    pose = nlzoo.load("simplebaseline_r18", pretrained=False)
    pose.nlzoo_config.data_config = pose.nlzoo_config.data_config.replace(crop_size=(64, 64))
    pose_dir = nlzoo.save_pretrained(pose, tmp_path / "pose_model")
    asked = _spy(monkeypatch, nlzoo.inference.pose)
    argv = ["predict-image", str(image / "images" / "val" / "000001.png"), "--model", str(pose_dir)]
    assert main([*argv, "--out", str(tmp_path / "p.png"), "--precision", "bf16"]) == 0
    assert asked == ["bf16", "bf16"]  # the image and its mirror (flip test)


@pytest.mark.parametrize("command", ["predict-video", "predict-image", "explain", "extract-features"])
def test_an_unknown_precision_is_refused_with_the_choices(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "x", "--model", "m", "--precision", "fp8"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --precision: invalid choice: 'fp8'" in err and all(p in err for p in ("auto", "bf16", "fp16"))


def test_bf16_on_a_cpu_without_bf16_instructions_warns_in_one_line_and_the_advised_flag_does_not(
    setup, monkeypatch, capsys, request
) -> None:
    folder, video = setup
    monkeypatch.setattr(nlzoo.precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    nlzoo.precision.cpu_bf16_pays.cache_clear()
    request.addfinalizer(nlzoo.precision.cpu_bf16_pays.cache_clear)
    argv = ["predict-video", str(video), "--model", str(folder), "--views", "1x1", "--device", "cpu"]
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main([*argv, "--precision", "bf16"]) == 0
    captured = capsys.readouterr()
    (line,) = [line for line in captured.err.splitlines() if "warning" in line]
    assert line.startswith("nlzoo predict-video: warning: precision bf16 on this CPU (") and "runs emulated" in line
    assert "same_colour" in captured.out  # a warning, not a refusal: the command ran
    advice = line.split("use precision auto (")[1].split(")")[0]
    assert advice == "--precision auto"
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main([*argv, *advice.split()]) == 0
    assert "warning" not in capsys.readouterr().err


def test_other_libraries_warnings_keep_their_usual_form(setup, monkeypatch, capsys) -> None:
    folder, video = setup

    def noisy(*args, **kwargs):
        warnings.warn("a torch-style warning", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    real = nlzoo.models.inference.inference_precision
    monkeypatch.setattr(nlzoo.models.inference, "inference_precision", noisy)
    with pytest.warns(UserWarning, match="a torch-style warning"):  # reaches Python's usual display hook
        assert main(["predict-video", str(video), "--model", str(folder), "--views", "1x1", "--precision", "fp32"]) == 0
    assert "nlzoo predict-video: warning" not in capsys.readouterr().err
