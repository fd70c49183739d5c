"""The Space entry point builds the same page as ``nlzoo serve`` from NLZOO_MODELS, without launching it."""

from __future__ import annotations

import runpy
from pathlib import Path

import gradio as gr

from tests.cli.tiny import write_model

SPACE = Path(__file__).resolve().parents[2] / "spaces" / "app.py"


def test_the_space_serves_the_models_named_in_its_variable(tmp_path, monkeypatch) -> None:
    write_model(tmp_path / "model")
    monkeypatch.setenv("NLZOO_MODELS", f" {tmp_path / 'model'} ,")
    space = runpy.run_path(str(SPACE), run_name="space")
    demo = space["demo"]
    assert isinstance(demo, gr.Blocks)
    endpoints = {dep.get("api_name") for dep in demo.config["dependencies"]}
    assert "classify_video" in endpoints and "analyse_image" not in endpoints  # a video model only: no image tab
    demo.close()
