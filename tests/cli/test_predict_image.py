from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import nlzoo
from nlzoo.cli import main
from nlzoo.data import generate_synthetic_pose


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = nlzoo.load("simplebaseline_r18", pretrained=False)
    model.nlzoo_config.data_config = model.nlzoo_config.data_config.replace(crop_size=(96, 64))
    return nlzoo.save_pretrained(model, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = generate_synthetic_pose(tmp_path_factory.mktemp("pose"), splits=(("val", 1),), image_size=(120, 150))
    return root / "images" / "val" / "000001.png"


def test_it_draws_the_skeleton_at_the_images_size(model_dir: Path, image: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "drawn.png"
    code = main(["predict-image", str(image), "--model", str(model_dir), "--out", str(out), "--threshold", "0"])
    assert code == 0
    drawn = Image.open(out)
    assert drawn.format == "PNG" and drawn.size == (150, 120)
    assert drawn.tobytes() != Image.open(image).convert("RGB").tobytes()  # something was drawn
    lines = capsys.readouterr().out.strip().splitlines()
    person = json.loads(lines[0])
    assert person["box"] == [0.0, 0.0, 150.0, 120.0] and len(person["keypoints"]) == 17
    assert lines[-1] == f"wrote {out} (1 person(s), 17 joints)"


def test_boxes_select_the_persons(model_dir: Path, image: Path, tmp_path: Path, capsys) -> None:
    boxes = ["--box", "10", "10", "50", "100", "--box", "70", "5", "60", "110"]
    assert main(["predict-image", str(image), "--model", str(model_dir), "--no-flip", *boxes]) == 0
    people = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:-1]]
    assert [p["box"] for p in people] == [[10.0, 10.0, 50.0, 100.0], [70.0, 5.0, 60.0, 110.0]]
    assert (image.parent / "000001_pose.png").is_file()
    for person in people:  # joints come back in image coordinates, near their box
        xy = torch.tensor(person["keypoints"])[:, :2]
        x, y, w, h = person["box"]
        assert (xy[:, 0] >= x - w).all() and (xy[:, 0] <= x + 2 * w).all() and (xy[:, 1] <= y + 2 * h).all()


def test_a_video_model_or_missing_image_is_a_one_line_error(tmp_path: Path, image: Path, capsys) -> None:
    video = nlzoo.save_pretrained(nlzoo.load("c2d_r18", pretrained=False, num_classes=3), tmp_path / "video")
    assert main(["predict-image", str(image), "--model", str(video)]) == 2
    assert "is a video-classification model; predict-image needs a pose model" in capsys.readouterr().err
    assert main(["predict-image", str(tmp_path / "none.png"), "--model", "simplebaseline_r18"]) == 2
    assert "does not exist" in capsys.readouterr().err
