"""The generated model card: Hub metadata in the front matter, and a body that claims only what config.json
records (reported vs verified accuracy, every provenance key, how to load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import nlzoo
from nlzoo.zoo.card import CITATION, render_model_card

SHA = "0123456789abcdef" * 4


def _split(card: str) -> tuple[dict[str, Any], str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


@pytest.fixture
def converted() -> torch.nn.Module:
    """A model as a converter leaves it: reported metrics, a license, and its own provenance keys."""
    model = nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=3)
    cfg = model.nlzoo_config
    cfg.pretrained_tag = "kinetics400"
    cfg.provenance = {
        "tag": "i3d_r18_nl.kinetics400",
        "dataset": "Kinetics-400",
        "license": "CC-BY-NC 4.0",
        "origin_url": "https://example.invalid/i3d_r18_nl.pkl",
        "metrics": {"top1": 70.5, "top5": 89.0},
        "verified": "logit parity with the source network (max abs diff 2e-5)",
        "converted_from": {"format": "caffe2", "file": "i3d_r18_nl.pkl", "sha256": SHA},
    }
    return model


def test_card_front_matter_is_hub_metadata(converted: torch.nn.Module) -> None:
    meta, _ = _split(render_model_card(converted.nlzoo_config, repo_id="org/i3d"))
    assert meta["library_name"] == "nlzoo" and meta["pipeline_tag"] == "video-classification"
    assert {"video-classification", "non-local", "nlzoo"} <= set(meta["tags"])
    assert meta["license"] == "cc-by-nc-4.0" and meta["datasets"] == ["Kinetics-400"]
    assert meta["metrics"] == ["accuracy"]
    (result,) = meta["model-index"][0]["results"]
    assert result["dataset"]["name"] == "Kinetics-400"
    assert [(m["name"], m["value"]) for m in result["metrics"]] == [("top-1 accuracy", 70.5), ("top-5 accuracy", 89.0)]
    assert result["source"]["url"] == "https://example.invalid/i3d_r18_nl.pkl"


def test_card_body_reports_what_the_config_records(converted: torch.nn.Module) -> None:
    _, body = _split(render_model_card(converted.nlzoo_config, repo_id="org/i3d"))
    assert body.count("# i3d_r18_nl.kinetics400") == 1
    assert "I3D ResNet-18 with 2 non-local blocks" in body
    assert "Reported by the source on Kinetics-400: top-1 accuracy 70.5, top-5 accuracy 89.0." in body
    assert "Verified by nlzoo: logit parity with the source network (max abs diff 2e-5)." in body
    assert 'model = nlzoo.load("hf-hub:org/i3d")' in body
    assert f"| converted_from.sha256 | {SHA} |" in body and "| converted_from.format | caffe2 |" in body
    assert "Weights license: CC-BY-NC 4.0." in body and "clips of 8 frames, one every 8" in body
    assert CITATION in body


def test_untrained_model_card_claims_nothing() -> None:
    meta, body = _split(render_model_card(nlzoo.load("c2d_r18", pretrained=False, num_classes=2).nlzoo_config))
    assert "license" not in meta and "model-index" not in meta and "datasets" not in meta
    assert "randomly initialised weights (not trained" in body
    assert "No accuracy is recorded" in body and "nlzoo has not re-measured" in body
    assert 'nlzoo.load("path/to/this/folder")' in body


def test_new_head_drops_the_reported_accuracy(converted: torch.nn.Module, tmp_path: Path) -> None:
    folder = nlzoo.save_pretrained(converted, tmp_path / "m")
    assert "top-1 accuracy 70.5" in (folder / "README.md").read_text()
    finetune = nlzoo.load(folder, num_classes=5)
    assert "metrics" not in finetune.nlzoo_config.provenance
    assert finetune.nlzoo_config.provenance["classifier"].startswith("re-initialised for 5 classes")
    card = render_model_card(finetune.nlzoo_config)
    assert "No accuracy is recorded" in card and "model-index" not in card
    assert "| folder |" not in card  # a local path means nothing on the Hub
