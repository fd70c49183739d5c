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


def test_several_models_of_a_tab_get_a_picker(tmp_path, monkeypatch) -> None:
    import nlzoo

    write_model(tmp_path / "nl")
    nlzoo.save_pretrained(nlzoo.load("c2d_r18", pretrained=False, num_classes=2), tmp_path / "plain")
    monkeypatch.setenv("NLZOO_MODELS", f"{tmp_path / 'nl'},{tmp_path / 'plain'}")
    demo = runpy.run_path(str(SPACE), run_name="space")["demo"]
    pickers = [c["props"] for c in demo.config["components"] if c["props"].get("label") == "model"]
    assert [[v for v, _ in p["choices"]] for p in pickers] == [[str(tmp_path / "nl"), str(tmp_path / "plain")]]
    assert pickers[0]["interactive"] is True and pickers[0]["value"] == str(tmp_path / "nl")
    demo.close()
