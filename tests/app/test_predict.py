"""One request's computation without the web layer: the same numbers as the shared inference helpers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import nlzoo
from nlzoo.app.limits import Limits
from nlzoo.app.models import load_served
from nlzoo.app.predict import analyse_image, classify_video
from nlzoo.errors import ConfigError
from nlzoo.inference.inputs import read_image, read_video_views
from nlzoo.inference.scores import class_scores
from nlzoo.zoo import DataConfig
from tests.cli.tiny import TINY_DATA, write_videos


def test_a_model_without_blocks_gets_labels_and_no_picture(tmp_path) -> None:
    model = nlzoo.load("c2d_r18", pretrained=False, num_classes=3)
    model.nlzoo_config.data_config = TINY_DATA
    nlzoo.save_pretrained(model, tmp_path / "plain")
    served = load_served([str(tmp_path / "plain")], device="cpu")[str(tmp_path / "plain")]
    video = write_videos(tmp_path / "data", count=1)[0]
    answer = classify_video(served, video, views=(2, 1), block=None, precision="fp32", limits=Limits())
    views = read_video_views(video, TINY_DATA, num_clips=2, num_crops=1)
    expected = class_scores(served.model, views, precision="fp32")
    assert answer.scores == pytest.approx({f"class_{i}": float(s) for i, s in enumerate(expected)}, abs=1e-6)
    assert list(answer.scores) == [f"class_{i}" for i in expected.argsort(descending=True).tolist()]
    assert answer.attention is None and answer.block is None and "2x1 views" in answer.detail


def test_an_image_classifier_gets_top_labels_and_the_attention_figure(tmp_path) -> None:
    model = nlzoo.load("resnet18_nl", pretrained=False, num_classes=7)
    config = DataConfig(crop_size=(64, 64), crop_pct=0.8)  # short side 80, centre 64 x 64 crop
    model.nlzoo_config.data_config = config
    nlzoo.save_pretrained(model, tmp_path / "image")
    served = load_served([str(tmp_path / "image")], device="cpu")[str(tmp_path / "image")]
    pixels = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.jpg")
    answer = analyse_image(served, tmp_path / "photo.jpg", block=None, precision="fp32", limits=Limits())
    with torch.inference_mode():
        expected = served.model(read_image(tmp_path / "photo.jpg", config)).softmax(-1)[0]
    assert len(answer.scores) == 5 and answer.drawn is None
    assert list(answer.scores.values()) == pytest.approx(expected.topk(5).values.tolist(), abs=1e-6)
    with Image.open(io.BytesIO(answer.attention)) as figure:
        assert figure.format == "PNG" and figure.width == 160  # one column of 160 px panels
    assert answer.block == served.blocks[0] and all(len(q) == 2 for q in answer.queries)


def test_a_task_the_page_cannot_show_is_refused(tmp_path) -> None:
    model = nlzoo.load("c2d_r18", pretrained=False, num_classes=2)
    model.nlzoo_config.task = "detection"  # a real task, but not one the page draws yet
    nlzoo.save_pretrained(model, tmp_path / "detector")
    with pytest.raises(ConfigError, match="is a detection model; the page shows image-classification"):
        load_served([str(tmp_path / "detector")], device="cpu")
