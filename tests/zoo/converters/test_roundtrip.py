"""Round trips: an nlzoo model written in each framework's layout converts back to the same model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import nlzoo
from nlzoo.zoo import convert_checkpoint

from .layouts import randomise, write_caffe2, write_mmaction2, write_pyslowfast, write_pytorchvideo

PYSLOWFAST_CFG = "MODEL:\n  ARCH: i3d\n  NUM_CLASSES: 400\nNONLOCAL:\n  INSTANTIATION: {}\n"

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    # (source, model, args of the exported model, conversion kwargs)
    ("caffe2", "i3d_r18_nl", {}, {}),
    ("caffe2", "c2d_r18", {"stem_pool_padding": 0}, {"stem_pool_padding": 0}),
    ("pyslowfast", "i3d_r18_nl", {}, {}),
    ("pyslowfast", "c2d_r18_nl", {"nonlocal_args": {"instantiation": "dot_product"}}, {}),
    ("pytorchvideo", "i3d_r18", {}, {}),
    (
        "mmaction2",
        "i3d_r18_nl",
        {"nonlocal_args": {"instantiation": "dot_product", "pool_embeddings": True}},
        {"nonlocal_args": {"instantiation": "dot_product"}},
    ),
    (
        "mmaction2",
        "i3d_r18_nl",
        {"nonlocal_args": {"instantiation": "embedded_gaussian", "softmax_scale": 1.0, "pool_embeddings": True}},
        {"nonlocal_args": {"instantiation": "embedded_gaussian", "softmax_scale": 1.0}},
    ),
    ("mmaction2", "i3d_r18_nl", {"nonlocal_args": {"instantiation": "gaussian", "pool_embeddings": True}}, {}),
    ("mmaction2", "c2d_r18_nl", {"nonlocal_args": {"instantiation": "concatenation", "pool_embeddings": True}}, {}),
]


def _write(source: str, model: torch.nn.Module, path: Path, export_args: dict[str, Any]) -> Path:
    if source == "caffe2":
        return write_caffe2(model, path)
    if source == "pyslowfast":
        kind = (export_args.get("nonlocal_args") or {}).get("instantiation", "embedded_gaussian")
        return write_pyslowfast(
            model, path, cfg=PYSLOWFAST_CFG.format({"embedded_gaussian": "softmax"}.get(kind, kind))
        )
    if source == "mmaction2":
        return write_mmaction2(model, path)
    return write_pytorchvideo(model, path)


@pytest.mark.parametrize(("source", "name", "export_args", "convert_args"), CASES)
def test_round_trip_restores_every_weight_and_the_logits(
    tmp_path: Path, source: str, name: str, export_args: dict[str, Any], convert_args: dict[str, Any]
) -> None:
    stem = {"stem_temporal_stride": 2, "stem_pool_temporal_kernel": 1} if source == "mmaction2" else {}
    zero = ("_nonlocal.conv_out.bias",) if source == "mmaction2" else ()  # mmcv's conv_out has no bias
    original = randomise(nlzoo.load(name, pretrained=False, num_classes=7, **stem, **export_args), zero=zero)
    checkpoint = _write(source, original, tmp_path / "checkpoint", export_args)

    out = convert_checkpoint(source, name, checkpoint, tmp_path / "out", **convert_args)
    converted = nlzoo.load(out).eval()

    want, got = original.state_dict(), converted.state_dict()
    assert set(got) == set(want)
    for key in want:
        if not key.endswith("num_batches_tracked"):  # a counter Caffe2 lacks; unused in eval
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(converted(clip), original(clip), rtol=0, atol=0)
    config = json.loads((out / "config.json").read_text())
    conversion = config["provenance"]["conversion"]
    assert conversion["source_format"] == source and conversion["input_file"] == "checkpoint"
    assert len(conversion["input_sha256"]) == 64 and config["num_classes"] == 7


def test_caffe2_test_net_classifier_and_sgd_state(tmp_path: Path) -> None:
    """pred_w as a 1x1x1 conv (test nets) reshapes; *_momentum, lr and model_iter are skipped."""
    original = randomise(nlzoo.load("c2d_r18", pretrained=False, num_classes=5))
    checkpoint = write_caffe2(original, tmp_path / "test_net.pkl", test_net_pred=True)
    converted = nlzoo.load(convert_checkpoint("caffe2", "c2d_r18", checkpoint, tmp_path / "out"))
    torch.testing.assert_close(converted.fc.weight, original.fc.weight, rtol=0, atol=0)
