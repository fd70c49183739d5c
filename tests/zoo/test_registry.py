from __future__ import annotations

import pytest

import nlzoo
from nlzoo.zoo import get_entry, model_info

REQUIRED = [
    "c2d_r50", "c2d_r50_nl", "c2d_r50_nl10", "i3d_r50", "i3d_r50_nl", "c2d_r101", "c2d_r101_nl", "i3d_r101",
    "i3d_r101_nl", "c2d_r18", "c2d_r18_nl", "i3d_r18", "i3d_r18_nl", "c2d_r34_nl", "i3d_r34_nl",
]  # fmt: skip


def test_the_paper_architectures_are_registered() -> None:
    assert set(REQUIRED) <= set(nlzoo.list_models())


def test_list_models_filters_and_sorts_naturally() -> None:
    assert nlzoo.list_models("i3d_r*_nl")[:4] == ["i3d_r18_nl", "i3d_r34_nl", "i3d_r50_nl", "i3d_r101_nl"]
    assert "c2d_r50" not in nlzoo.list_models("*nl*")
    assert nlzoo.list_models(["c2d_r50", "i3d_r50"]) == ["c2d_r50", "i3d_r50"]
    assert "c2d_r50_nl10" not in nlzoo.list_models("c2d_r50*", exclude="*nl10")
    assert all(n.endswith(".imagenet") for n in nlzoo.list_models("i3d_r50*", pretrained=True))
    assert nlzoo.list_models(task="pose-estimation", pattern="i3d*") == []


def test_each_name_carries_its_data_config() -> None:
    cfg = model_info("i3d_r50_nl").data_config
    assert (cfg.num_frames, cfg.sampling_rate, cfg.crop_size) == (8, 8, (224, 224))
    assert cfg.mean == (0.45, 0.45, 0.45) and cfg.test_clips == 10 and cfg.test_crops == 3
    assert cfg.input_shape == (3, 8, 224, 224)


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(KeyError, match=r"unknown model 'i3d_r50_nll'\. Did you mean 'i3d_r50_nl'"):
        get_entry("i3d_r50_nll")
    with pytest.raises(KeyError, match=r"unknown tag 'imagenett' for i3d_r50_nl\. Did you mean 'imagenet'"):
        model_info("i3d_r50_nl.imagenett")
