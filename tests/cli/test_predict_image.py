from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nlzoo
from nlzoo.cli import main
from nlzoo.data import generate_synthetic_pose
from tests.cli.tiny import write_model, write_videos


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


def test_a_video_model_is_sent_to_predict_video_and_that_advice_works(tmp_path: Path, image: Path, capsys) -> None:
    video_model = tmp_path / "video_model"
    write_model(video_model)
    assert main(["predict-image", str(image), "--model", str(video_model)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a video-classification model; predict-image takes image" in err
    advice = err.split("`")[1].split()  # nlzoo predict-video VIDEO --model ...
    assert advice[:2] == ["nlzoo", "predict-video"]
    video = write_videos(tmp_path / "videos", count=1)[0]
    assert main([advice[1], str(video), *advice[3:]]) == 0
    assert "class_" not in capsys.readouterr().out  # the model's own label names


def test_a_missing_image_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["predict-image", str(tmp_path / "none.png"), "--model", "simplebaseline_r18"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18_nl with ImageNet's WordNet ids as label names (as timm's weights carry them), a small bicubic
    crop, and a head scaled so that its classes are well apart."""
    from timm.data import ImageNetInfo

    model = nlzoo.load("resnet18_nl", pretrained=False)
    torch.nn.init.normal_(model.get_classifier().weight, std=2.0)
    config = model.nlzoo_config
    config.data_config = config.data_config.replace(crop_size=(72, 72), crop_pct=0.9, interpolation="bicubic")
    config.label_names = ImageNetInfo().label_names()
    return nlzoo.save_pretrained(model, tmp_path_factory.mktemp("classifier"))


def _rows(out: str) -> list[list[str]]:
    """The top-k table's rows: rank, class, label, score."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]


def test_an_image_classifier_prints_its_top_k_as_timms_evaluation_scores_it(
    classifier_dir: Path, image: Path, capsys
) -> None:
    from timm.data import ImageNetInfo
    from timm.data.transforms_factory import transforms_imagenet_eval

    code = main(["predict-image", str(image), "--model", str(classifier_dir), "--top-k", "3", "--precision", "fp32"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{image}: resnet18_nl, 72x72 centre crop (crop_pct 0.9, bicubic)" in out
    model = nlzoo.load(str(classifier_dir)).eval()
    d = model.nlzoo_config.data_config
    x = transforms_imagenet_eval(img_size=72, crop_pct=0.9, interpolation="bicubic", mean=d.mean, std=d.std)(
        Image.open(image).convert("RGB")
    )
    with torch.inference_mode():
        top = model(x.unsqueeze(0)).softmax(-1)[0].topk(3)
    info = ImageNetInfo()
    expected = [
        [str(rank), str(i), info.index_to_description(i), f"{score:.4f}"]
        for rank, (score, i) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True), start=1)
    ]
    rows = _rows(out)
    assert [row[:3] for row in rows] == [row[:3] for row in expected]
    assert [float(row[3]) for row in rows] == pytest.approx([float(row[3]) for row in expected], abs=2e-4)


def test_drawing_options_with_a_classifier_are_refused_and_leaving_them_out_works(
    classifier_dir: Path, image: Path, tmp_path: Path, capsys
) -> None:
    drawing = ["--box", "1", "1", "20", "20", "--out", str(tmp_path / "x.png"), "--no-flip", "--threshold", "0.5"]
    assert main(["predict-image", str(image), "--model", str(classifier_dir), *drawing]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--out, --box, --no-flip, --threshold: for pose models and detectors" in err and "leave them out" in err
    assert not (tmp_path / "x.png").exists()
    assert main(["predict-image", str(image), "--model", str(classifier_dir), "--top-k", "1000000"]) == 0
    assert len(_rows(capsys.readouterr().out)) == 1000  # every class, no more
    with pytest.raises(SystemExit) as refused:  # at parse time, before the model loads
        main(["predict-image", str(image), "--model", str(classifier_dir), "--top-k", "0"])
    assert refused.value.code == 2
    assert "argument --top-k: must be a whole number >= 1; got '0'" in capsys.readouterr().err


def test_predict_video_sends_an_image_classifier_here(
    classifier_dir: Path, image: Path, tmp_path: Path, capsys
) -> None:
    video = write_videos(tmp_path / "videos", count=1)[0]
    assert main(["predict-video", str(video), "--model", str(classifier_dir)]) == 2
    advice = capsys.readouterr().err.split("`")[1].split()  # nlzoo predict-image IMAGE --model ...
    assert advice[:3] == ["nlzoo", "predict-image", "IMAGE"]
    assert main([advice[1], str(image), *advice[3:]]) == 0
    assert "resnet18_nl, 72x72 centre crop" in capsys.readouterr().out


def test_json_gives_a_classifiers_top_k_and_a_pose_model_refuses_classifier_options(
    classifier_dir: Path, model_dir: Path, image: Path, capsys
) -> None:
    argv = ["predict-image", str(image), "--precision", "fp32", "--top-k", "3"]
    assert main([*argv, "--model", str(classifier_dir)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert main([*argv, "--model", str(classifier_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"] == str(image) and report["model"] == "resnet18_nl"
    assert [[str(r["rank"]), str(r["class"]), r["label"]] for r in report["top_k"]] == [row[:3] for row in rows]
    assert [r["score"] for r in report["top_k"]] == pytest.approx([float(row[3]) for row in rows], abs=5e-5)

    assert main([*argv, "--model", str(model_dir), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--top-k, --json: for image classifiers;" in err
    assert main(["predict-image", str(image), "--model", str(model_dir), "--no-flip"]) == 0  # left out: it draws
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("wrote ")


def test_a_photo_stored_sideways_is_classified_and_drawn_upright(
    classifier_dir: Path, model_dir: Path, image: Path, tmp_path: Path, capsys
) -> None:
    """A phone's portrait photo: pixels stored turned, with EXIF Orientation 6 saying how to show them."""
    upright = np.asarray(Image.open(image).convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    phone = tmp_path / "phone.png"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).save(phone, exif=exif.tobytes())

    argv = ["--model", str(classifier_dir), "--json", "--precision", "fp32"]
    assert main(["predict-image", str(image), *argv]) == 0
    expected = json.loads(capsys.readouterr().out)["top_k"]
    assert main(["predict-image", str(phone), *argv]) == 0
    assert json.loads(capsys.readouterr().out)["top_k"] == expected

    out = tmp_path / "drawn.png"
    assert main(["predict-image", str(phone), "--model", str(model_dir), "--out", str(out), "--no-flip"]) == 0
    assert Image.open(out).size == Image.open(image).size  # drawn on the upright picture
    assert json.loads(capsys.readouterr().out.splitlines()[0])["box"] == [0.0, 0.0, *map(float, Image.open(image).size)]


def test_a_narrow_strip_is_one_line_not_gigabytes(classifier_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "100000")  # the 400 x 20 strip resizes to 1,600 x 80
    Image.new("RGB", (400, 20), (90, 60, 30)).save(tmp_path / "strip.png")
    assert main(["predict-image", str(tmp_path / "strip.png"), "--model", str(classifier_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a 400x20 picture resized to 1600x80 (crop a strip this narrow first)" in err


def test_pose_boxes_off_the_image_are_refused_before_the_model_loads(image: Path, tmp_path: Path, capsys) -> None:
    """A box far off the image gave made-up keypoints, and an astronomically large one NaN in the JSON lines."""
    from PIL import Image as PILImage

    width, height = PILImage.open(image).size
    for box in (["1000", "1000", "20", "20"], ["10", "10", "1e300", "1e300"], ["-50", "0", "40", "10"]):
        argv = ["predict-image", str(image), "--model", "does-not-matter", "--box", *box]
        assert main([*argv, "--out", str(tmp_path / "p.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"does not lie on the {width}x{height} image" in err
    assert not (tmp_path / "p.png").exists()
