"""Image models: timm backbones with non-local blocks, timm's weights and data configs, the ``timm:`` names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

import nlzoo
from nlzoo.layers import nonlocal_blocks
from nlzoo.zoo import hub as hub_module
from nlzoo.zoo import load_weights
from nlzoo.zoo.families.sources import TimmWeights


def random_timm(name: str, **kwargs: object) -> nn.Module:
    """A timm network with random weights *and* random BatchNorm statistics, in eval mode."""
    model = timm.create_model(name, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.normal_(1, 0.2)
                module.bias.normal_(0, 0.1)
    return model.eval()


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """``hub.hub_file`` answering every request with ``tmp_path/model.safetensors``; records what was asked."""
    asked: dict[str, object] = {}

    def fake_hub_file(repo_id: str, filename: str, **kwargs: object) -> Path:
        asked.update(repo_id=repo_id, filename=filename, **kwargs)
        return tmp_path / filename

    monkeypatch.setattr(hub_module, "hub_file", fake_hub_file)
    return asked


def save_as_hub_file(model: nn.Module, folder: Path) -> None:
    safetensors.torch.save_file(model.state_dict(), folder / "model.safetensors")


def test_registered_placements() -> None:
    def blocks(name: str) -> list[str]:
        return [n for n, _ in nonlocal_blocks(nlzoo.load(name, pretrained=False))]

    assert blocks("resnet50_nl") == ["layer3.1_nonlocal", "layer3.3_nonlocal", "layer3.5_nonlocal"]
    assert blocks("resnet18_nl_l2l3") == ["layer2.1_nonlocal", "layer3.1_nonlocal"]
    assert blocks("resnet18") == []
    block = dict(nonlocal_blocks(nlzoo.load("resnet50_nl", pretrained=False)))["layer3.1_nonlocal"]
    assert block.in_channels == 1024 and block.dims == 2


def test_new_blocks_leave_a_trained_network_unchanged() -> None:
    """timm's state dict loads by key into the NL model, which then predicts exactly what timm's network does."""
    reference = random_timm("resnet18", num_classes=10)
    model = nlzoo.load("resnet18_nl_l2l3", pretrained=False, num_classes=10)
    report = load_weights(model, reference.state_dict(), classifier="fc", partial=("*_nonlocal.*",))
    assert report.kept_init and all("_nonlocal." in key for key in report.kept_init)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)
    # the blocks are on the forward path: a trained (non-zero) gamma changes the predictions
    nn.init.constant_(dict(nonlocal_blocks(model))["layer2.1_nonlocal"].norm.weight, 0.5)
    assert not torch.allclose(model(x), reference(x))


def test_tag_downloads_timm_weights_of_the_base_network(fake_hub: dict[str, object], tmp_path: Path) -> None:
    reference = random_timm("resnet18")
    save_as_hub_file(reference, tmp_path)
    model = nlzoo.load("resnet18_nl.tv_in1k", local_files_only=True).eval()
    assert fake_hub["repo_id"] == "timm/resnet18.tv_in1k" and fake_hub["local_files_only"] is True
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)
    cfg = model.nlzoo_config
    assert cfg.pretrained_tag == "tv_in1k" and cfg.provenance["source"] == "hf-hub:timm/resnet18.tv_in1k"
    assert cfg.label_names[0] == "n01440764" and len(cfg.label_names) == 1000
    assert cfg.label_names == sorted(cfg.label_names)  # the order of an ImageNet tree's sorted class folders
    assert (cfg.data_config.interpolation, cfg.data_config.crop_pct) == ("bilinear", 0.875)


def test_fine_tuning_head_replaces_only_the_classifier(
    fake_hub: dict[str, object], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reference = random_timm("resnet18")
    save_as_hub_file(reference, tmp_path)
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        model = nlzoo.load("resnet18_nl", pretrained=True, num_classes=5).eval()
    assert fake_hub["repo_id"] == "timm/resnet18.a1_in1k"  # the default tag, timm's default
    assert "dropped fc.bias, fc.weight" in caplog.text and model.nlzoo_config.label_names is None
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model.forward_features(x), reference.forward_features(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet18.a1_in1k", "resnet18.tv_in1k", "seresnet50.ra2_in1k"])
def test_data_config_is_timms(name: str) -> None:
    arch, _, tag = name.partition(".")
    ours = nlzoo.load(f"{arch}_nl.{tag}", pretrained=False).nlzoo_config.data_config
    timms = resolve_model_data_config(timm.create_model(name))
    assert ours.crop_size == timms["input_size"][1:] and ours.crop_pct == timms["crop_pct"]
    assert (ours.mean, ours.std, ours.interpolation) == (timms["mean"], timms["std"], timms["interpolation"])


def test_every_image_tag_points_at_timm_weights_and_reports_the_base_network() -> None:
    names = nlzoo.list_models(task="image-classification", exclude="timm_nonlocal")
    assert len(names) == 20  # 6 archs x 3 placements + resnet18_gc, resnet50_gc
    for name in names:
        entry = nlzoo.model_info(name)
        base = name.removesuffix("_nl_l2l3").removesuffix("_nl").removesuffix("_gc")
        assert entry.tags, name
        for tag in entry.tags.values():
            assert tag.status == "available" and tag.source == TimmWeights(f"{base}.{tag.tag}")
            assert tag.partial == ("*_nonlocal.*",) and tag.num_classes == 1000
            assert 60 < tag.metrics["top1"] < tag.metrics["top5"] < 100
            assert f"base network {base}.{tag.tag}" in tag.notes
            assert ("start as identities" in tag.notes) == (name != base)


def test_any_timm_model_by_prefix_saves_and_reloads(tmp_path: Path) -> None:
    # a block run by a hook
    model = nlzoo.load("timm:regnetx_002", pretrained=False, nonlocal_after=["s3"], num_classes=5)
    (block,) = (b for _, b in nonlocal_blocks(model))
    assert block.in_channels == 152
    nn.init.normal_(block.norm.weight, std=0.1)
    cfg = model.nlzoo_config
    assert cfg.architecture == "timm_nonlocal" and cfg.model_args["timm_name"] == "regnetx_002"
    assert cfg.data_config.interpolation == "bicubic"  # timm's, not the generic entry's default
    folder = nlzoo.save_pretrained(model, tmp_path / "saved")
    again = nlzoo.load(folder).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(again(x), model.eval()(x), rtol=0, atol=0)
    assert again.nlzoo_config.data_config == cfg.data_config
    new_head = nlzoo.load(folder, num_classes=3)  # the classifier ("head.fc") is found through get_classifier()
    assert new_head.num_classes == 3
    kept = {k: v for k, v in new_head.state_dict().items() if not k.startswith("head.fc.")}
    torch.testing.assert_close(kept, {k: v for k, v in model.state_dict().items() if k in kept}, rtol=0, atol=0)


def test_any_timm_model_with_timm_weights(fake_hub: dict[str, object], tmp_path: Path) -> None:
    reference = random_timm("resnet18")
    save_as_hub_file(reference, tmp_path)
    model = nlzoo.load("timm:resnet18", pretrained=True, nonlocal_after=["layer4.0"], local_files_only=True)
    assert fake_hub["repo_id"] == "timm/resnet18.a1_in1k"
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model.eval()(x), reference(x), rtol=0, atol=0)
    assert model.nlzoo_config.pretrained_tag == "a1_in1k" and model.nlzoo_config.data_config.crop_pct == 0.95
    nlzoo.load("timm:resnet18.tv_in1k", nonlocal_after=["layer4.0"], local_files_only=True)
    assert fake_hub["repo_id"] == "timm/resnet18.tv_in1k"


def test_name_errors() -> None:
    with pytest.raises(KeyError, match=r"timm has no weights 'resnet18.tv_in1kk'. Did you mean 'tv_in1k'\?"):
        nlzoo.load("timm:resnet18.tv_in1kk")
    with pytest.raises(KeyError, match="timm has no architecture 'resnett18'. Similar: resnet18"):
        nlzoo.load("timm:resnett18")
    with pytest.raises(ValueError, match="names the timm architecture already; drop timm_name"):
        nlzoo.load("timm:resnet18", pretrained=False, timm_name="resnet34")
    with pytest.raises(TypeError, match="timm_nonlocal needs timm_name"):
        nlzoo.load("timm_nonlocal", pretrained=False)
    with pytest.raises(KeyError, match="has no submodule 'layer3.9'"):
        nlzoo.load("timm:resnet18", pretrained=False, nonlocal_after=["layer3.9"])
    with pytest.raises(KeyError, match="unknown tag 'in1k' for resnet50_nl. Did you mean"):
        nlzoo.load("resnet50_nl.in1k")
