"""``nlzoo export-onnx``: a model folder to a checked ONNX file or a torch.export program."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nlzoo.cli import main

from .tiny import write_model

ort = pytest.importorskip("onnxruntime")


def test_export_onnx_command_writes_a_file_onnxruntime_agrees_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_model(tmp_path / "model")
    out = tmp_path / "m.onnx"
    assert main(["export-onnx", str(tmp_path / "model"), str(out), "--dynamic-batch"]) == 0
    assert "opset 18" in capsys.readouterr().out
    x = torch.randn(2, 3, 4, 32, 32)  # the data config's clip (4 frames, 32 px), another batch size
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        want = model(x)
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()


def test_export_onnx_command_bad_size_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_model(tmp_path / "model")
    assert main(["export-onnx", str(tmp_path / "model"), str(tmp_path / "m.onnx"), "--size", "8", "8"]) == 2
    err = capsys.readouterr().err
    assert "too small" in err and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("out", "extra", "message"),
    [
        ("{file}/a.onnx", [], "cannot write in"),
        ("a.onnx", ["--size", "100000", "100000"], "--size 100000 100000 is 10,000,000,000, over the limit"),
        ("a.onnx", ["--opset", "0"], "argument --opset: must be a whole number >= 1"),
    ],
)
def test_the_output_and_sizes_are_checked_before_the_model_loads(
    tmp_path, out: str, extra: list[str], message: str, capsys, monkeypatch
) -> None:
    import nlzoo.inference.inputs as inputs

    monkeypatch.setattr(inputs, "load", lambda name: pytest.fail("the model was loaded"))
    (tmp_path / "file").write_text("x")
    target = str(tmp_path / out.replace("{file}", "file"))
    try:
        code = main(["export-onnx", "resnet18_nl", target, *extra])
    except SystemExit as exit:  # argparse's refusals
        code = exit.code
    assert code == 2 and message in capsys.readouterr().err
