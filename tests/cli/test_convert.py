"""``nlzoo convert``: a checkpoint file in, a loadable folder out; errors as one line with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nlzoo
from nlzoo.cli import main
from tests.zoo.converters.layouts import randomise, write_pytorchvideo


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model = randomise(nlzoo.load("i3d_r18", pretrained=False, num_classes=6))
    return model, write_pytorchvideo(model, tmp_path / "I3D_8x8_R18.pyth")


def test_convert_writes_a_folder_nlzoo_loads(
    checkpoint: tuple[torch.nn.Module, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, path = checkpoint
    out = tmp_path / "out"
    assert main(["convert", "--source", "pytorchvideo", "--model", "i3d_r18", str(path), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (i3d_r18, 6 classes)" in printed
    assert "sha256" in printed and "nlzoo.load(" in printed
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(nlzoo.load(out).eval()(clip), model(clip), rtol=0, atol=0)


def test_model_args_pass_through(checkpoint: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    _, path = checkpoint
    argv = ["convert", "--source", "pytorchvideo", "--model", "i3d_r18", str(path), str(tmp_path / "out")]
    assert main([*argv, "--model-args", '{"dropout": 0.2}']) == 0
    assert nlzoo.load(tmp_path / "out").dropout.p == 0.2
    with pytest.raises(SystemExit):
        main([*argv, "--model-args", "{not json"])


def test_a_wrong_source_is_one_line_naming_the_right_one(
    checkpoint: tuple[torch.nn.Module, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = checkpoint
    assert main(["convert", "--source", "caffe2", "--model", "i3d_r18", str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nlzoo convert: error: I3D_8x8_R18.pyth is a pytorchvideo hub .pyth" in err
    assert "use --source pytorchvideo" in err and "Traceback" not in err
