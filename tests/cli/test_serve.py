"""``nlzoo serve`` refuses bad settings in one line before it listens (the page itself: tests/app)."""

from __future__ import annotations

import sys

import pytest

from nlzoo.cli import main
from tests.cli.tiny import write_model


def test_an_unknown_precision_is_one_line_and_leaves_no_upload_folder(tmp_path, monkeypatch, capsys) -> None:
    write_model(tmp_path / "model")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    assert main(["serve", "--model", str(tmp_path / "model"), "--precision", "fp8", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nlzoo serve: error: unknown precision 'fp8'; choose one of auto, fp32, bf16, fp16")
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_model_named_twice_is_refused(tmp_path, capsys) -> None:
    write_model(tmp_path / "model")
    assert main(["serve", "--model", str(tmp_path / "model"), "--model", str(tmp_path / "model")]) == 2
    assert "is named twice" in capsys.readouterr().err


def test_without_gradio_it_says_what_to_install(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for module in [m for m in sys.modules if m == "nlzoo.app" or m.startswith("nlzoo.app.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "gradio", None)  # what an environment without the app extra sees
    assert main(["serve", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nlzoo serve: error: nlzoo serve needs Gradio (") and 'pip install "nlzoo[app]"' in err
