"""``nlzoo predict-image`` and ``nlzoo explain`` on detectors: boxes, masks, labels, keypoints, NL attention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from PIL import Image
from torchvision.models import resnet18

import nlzoo
from nlzoo.cli import main
from nlzoo.data.synthetic_detection import SyntheticDetectionSpec, ensure_synthetic_detection
from nlzoo.zoo import hub

SMALL = {"min_size": 96, "max_size": 96, "box_score_thresh": 0.0, "box_detections_per_img": 3}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = ensure_synthetic_detection(
        tmp_path_factory.mktemp("pd") / "data", SyntheticDetectionSpec(num_train=8, num_val=1, size=(96, 96))
    )
    return root / "images" / "train"


def _saved(name: str, folder: Path) -> Path:
    model = nlzoo.load(name, pretrained=False, num_classes=5 if name.startswith("mask") else 2, **SMALL)
    model.nlzoo_config.data_config = model.nlzoo_config.data_config.replace(crop_size=(96, 96), test_scale=96)
    shapes = ["circle", "square", "triangle"] if model.num_classes == 5 else []
    model.nlzoo_config.label_names = ["__background__", *shapes, "person"]
    return nlzoo.save_pretrained(model, folder)


def test_mask_rcnn_draws_masks_boxes_and_labels_on_rgba_and_grey_images(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _saved("maskrcnn_r18_fpn_nl", tmp_path / "mask")
    for file in ("000004.png", "000006.png"):  # saved as RGBA and as greyscale
        out = tmp_path / f"{file}.out.png"
        assert (
            main(["predict-image", str(images / file), "--model", str(folder), "--threshold", "0", "--out", str(out)])
            == 0
        )
        lines = capsys.readouterr().out.splitlines()
        detections = [json.loads(line) for line in lines[:-1]]
        assert len(detections) == 3 and lines[-1].startswith(f"wrote {out} (3 detection(s)")
        assert all(d["label"] in ("circle", "square", "triangle", "person") and len(d["box"]) == 4 for d in detections)
        drawn = Image.open(out)
        assert drawn.size == (96, 96) and drawn.mode == "RGB"
        assert drawn.tobytes() != Image.open(images / file).convert("RGB").tobytes()
    assert main(["predict-image", str(images / "000001.png"), "--model", str(folder), "--threshold", "1.1"]) == 0
    assert "(0 detection(s)" in capsys.readouterr().out


def test_keypoint_rcnn_prints_17_keypoints_per_person(images: Path, tmp_path: Path, capsys) -> None:
    folder = _saved("keypointrcnn_r18_fpn_nl_head", tmp_path / "kp")
    assert main(["predict-image", str(images / "000001.png"), "--model", str(folder), "--threshold", "0"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["label"] == "person" and len(first["keypoints"]) == 17
    assert (images / "000001_detections.png").is_file()  # the default output, beside the input


def test_explain_draws_the_backbone_block_of_a_detector(images: Path, tmp_path: Path, capsys) -> None:
    folder = _saved("maskrcnn_r18_fpn_nl", tmp_path / "mask")
    out = tmp_path / "explain"
    assert (
        main(["explain", str(images / "000002.png"), "--model", str(folder), "--out", str(out), "--device", "cpu"]) == 0
    )
    assert "block backbone.body.layer3.0_nonlocal" in capsys.readouterr().out
    assert (out / "000002.backbone.body.layer3.0_nonlocal.png").is_file()


def test_backbone_only_weights_are_refused_with_the_way_out(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(resnet18().state_dict(), path)
    monkeypatch.setattr(hub, "hub_file", lambda repo, filename, **_: str(path))
    assert main(["predict-image", str(images / "000001.png"), "--model", "maskrcnn_r18_fpn_nl.imagenet"]) == 2
    err = capsys.readouterr().err
    assert "holds no weights for backbone.fpn" in err and "fine-tune it (nlzoo fit)" in err


def test_auto_precision_runs_detectors_in_fp32_and_bf16_runs_when_asked(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    folder = _saved("maskrcnn_r18_fpn_nl", tmp_path / "mask")
    image = images / "000004.png"
    argv = ["predict-image", str(image), "--model", str(folder), "--threshold", "0", "--out", str(tmp_path / "o.png")]
    printed = {}
    for precision in ("auto", "fp32", "bf16"):
        assert main([*argv, "--precision", precision]) == 0
        printed[precision] = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:-1]]
    assert printed["auto"] == printed["fp32"]  # whatever the CPU: box coordinates stay fp32
    model = nlzoo.load(str(folder)).eval()
    pixels = torch.from_numpy(np.asarray(Image.open(image).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        (expected,) = model([pixels])
    assert [d["box"] for d in printed["fp32"]] == [[round(v, 1) for v in box] for box in expected["boxes"].tolist()]
    detections = printed["bf16"]  # autocast as asked (its scores are not fp32's); printed as plain floats
    assert [d["score"] for d in detections] != [d["score"] for d in printed["fp32"]]
    assert len(detections) == 3 and all(isinstance(v, float) for d in detections for v in [*d["box"], d["score"]])
