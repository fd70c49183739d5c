from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

import nlzoo
from nlzoo.layers import nonlocal_blocks
from nlzoo.models.pose import TopDownPoseModel
from nlzoo.zoo import hub, model_info


def test_simplebaseline_maps_crops_to_quarter_resolution_heatmaps() -> None:
    model = nlzoo.load("simplebaseline_r18_nl_head", pretrained=False).eval()
    assert model.num_classes == 17 and model.num_features == 512
    assert model(torch.randn(2, 3, 96, 64)).shape == (2, 17, 24, 16)
    assert model.get_classifier() is model.head.final_layer
    model.reset_classifier(14)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 14, 16, 16)


@pytest.mark.slow
def test_full_size_r50_gives_64x48_heatmaps_for_256x192_crops() -> None:
    model = nlzoo.load("simplebaseline_r50_nl", pretrained=False).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 192)).shape == (1, 17, 64, 48)
    assert model_info("simplebaseline_r50_nl").data_config.crop_size == (256, 192)


def test_nonlocal_placement_is_the_papers_res4_position_and_optional_head_blocks() -> None:
    names = [n for n, _ in nonlocal_blocks(nlzoo.load("simplebaseline_r50_nl", pretrained=False))]
    assert names == ["backbone.layer3.4_nonlocal"]  # right before the last of res4's 6 blocks
    head = [n for n, _ in nonlocal_blocks(nlzoo.load("simplebaseline_r18_nl_head", pretrained=False))]
    assert head == [
        "backbone.layer3.0_nonlocal",
        "head.deconv_layers.2_nonlocal",
        "head.deconv_layers.5_nonlocal",
        "head.deconv_layers.8_nonlocal",
    ]
    assert list(nonlocal_blocks(nlzoo.load("simplebaseline_r18", pretrained=False))) == []


def test_new_nonlocal_blocks_leave_a_trained_model_unchanged() -> None:
    plain = nlzoo.load("simplebaseline_r18", pretrained=False).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.05)
    with_blocks = nlzoo.load("simplebaseline_r18_nl_head", pretrained=False).eval()
    report = nlzoo.zoo.load_weights(with_blocks, plain.state_dict(), partial=("*_nonlocal.*",))
    assert report.kept_init and all("_nonlocal." in k for k in report.kept_init)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(with_blocks(x), plain(x))


def test_bad_inputs_say_what_is_expected() -> None:
    model = TopDownPoseModel("resnet18")
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 64, 48))
    with pytest.raises(ValueError, match=r"person crops \(B, 3, H, W\)"):
        model(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match="deconv stages are 0..2"):
        TopDownPoseModel("resnet18", head_nonlocal_after=[3])
    with pytest.raises(TypeError, match="unexpected argument 'head_nonlocal'"):
        nlzoo.load("simplebaseline_r18", pretrained=False, head_nonlocal=[0])


@pytest.fixture
def fake_timm_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The Hub's timm/resnet18.tv_in1k replaced by a random timm resnet18 checkpoint (same keys and shapes)."""
    weights = timm.create_model("resnet18").state_dict()
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(weights, path)
    requested = []

    def hub_file(repo: str, filename: str, **_: object) -> str:
        requested.append(repo)
        return str(path)

    monkeypatch.setattr(hub, "hub_file", hub_file)
    return weights, requested


def test_imagenet_tag_loads_every_backbone_key_and_keeps_the_new_head(
    fake_timm_hub: tuple[dict[str, torch.Tensor], list[str]],
) -> None:
    weights, requested = fake_timm_hub
    model = nlzoo.load("simplebaseline_r18_nl.imagenet")
    assert requested == ["timm/resnet18.tv_in1k"]
    state = model.state_dict()
    for key, value in weights.items():
        if key.startswith("fc."):
            assert f"backbone.{key}" not in state
        else:
            torch.testing.assert_close(state[f"backbone.{key}"], value)
    assert model.nlzoo_config.pretrained_tag == "imagenet"
    # another skeleton: the tag still loads (the head is new either way)
    assert nlzoo.load("simplebaseline_r18.imagenet", num_classes=14).num_classes == 14
