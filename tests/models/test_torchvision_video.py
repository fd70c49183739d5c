"""torchvision's video networks with non-local blocks: parity, training, folders and the offline weight source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision.models._api
from torch import nn
from torchvision.models import video as tv_video

import nlzoo
from nlzoo.layers import nonlocal_blocks
from nlzoo.models.torchvision_video import TorchvisionS3D, TorchvisionVideoResNet
from nlzoo.zoo import load_weights, model_info
from nlzoo.zoo.families.sources import TorchvisionWeights

RESNETS = ("r3d_18", "mc3_18", "r2plus1d_18")
CLIP = (2, 3, 4, 64, 64)
S3D_MIN_CLIP = (1, 3, 13, 209, 209)


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics so parity is not helped by identity norms."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _torchvision(arch: str, **kwargs: Any) -> nn.Module:
    return _randomise_bn(getattr(tv_video, arch)(weights=None, **kwargs)).eval()


@pytest.fixture
def fake_download(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace torch.hub's download under torchvision's weights API with a random torchvision state dict."""
    calls: dict[str, Any] = {"references": {}}

    def load_state_dict_from_url(url: str, **kwargs: Any) -> dict[str, torch.Tensor]:
        arch = Path(url).name.split("-")[0]
        reference = _torchvision(arch)
        calls.update(url=url, **kwargs)
        calls["references"][arch] = reference
        return reference.state_dict()

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", load_state_dict_from_url)
    return calls


def test_registry_names_placement_and_parameter_counts() -> None:
    expected = {
        "r3d_18_nl": [("layer2.1_nonlocal", 128), ("layer3.1_nonlocal", 256)],
        "s3d_nl": [("features.6_nonlocal", 480), ("features.9_nonlocal", 512), ("features.11_nonlocal", 528)],
    }
    for name, blocks in expected.items():
        model = nlzoo.load(name, pretrained=False)
        assert [(n, b.in_channels) for n, b in nonlocal_blocks(model)] == blocks
        plain = nlzoo.load(name.removesuffix("_nl"), pretrained=False)
        assert not list(nonlocal_blocks(plain))
    for arch in (*RESNETS, "s3d"):  # torchvision's meta states num_params; the plain models match it
        source = model_info(arch).tags["kinetics400"].source
        assert isinstance(source, TorchvisionWeights) and source.arch == arch
        assert (
            sum(p.numel() for p in nlzoo.load(arch, pretrained=False).parameters()) == source.entry().meta["num_params"]
        )


@pytest.mark.parametrize("arch", RESNETS)
def test_video_resnet_logits_equal_torchvision_before_training(arch: str) -> None:
    reference = _torchvision(arch, num_classes=6)
    model = nlzoo.load(f"{arch}_nl", pretrained=False, num_classes=6).eval()
    report = load_weights(model, reference.state_dict(), partial=("*_nonlocal.*",))
    assert report.kept_init and all("_nonlocal." in k for k in report.kept_init)
    x = torch.randn(*CLIP)
    with torch.no_grad():
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), reference(x), rtol=1e-4, atol=1e-5)
    assert features.shape[1] == model.num_features == 512
    assert model.forward_head(features, pre_logits=True).shape == (2, 512)


def test_s3d_logits_equal_torchvision_at_its_minimum_clip() -> None:
    reference = _torchvision("s3d", num_classes=5)
    model = TorchvisionS3D(num_classes=5).eval()
    load_weights(model, reference.state_dict(), partial=("*_nonlocal.*",))
    x = torch.randn(*S3D_MIN_CLIP)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"needs at least 13 frame\(s\) and 209x209"):
        model(torch.randn(1, 3, 12, 209, 209))


def test_one_optimisation_step_trains_the_nonlocal_blocks() -> None:
    model = nlzoo.load("r3d_18_nl", pretrained=False, num_classes=3).train()
    blocks = dict(nonlocal_blocks(model))
    before = {n: {k: v.clone() for k, v in b.state_dict().items()} for n, b in blocks.items()}
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(*CLIP), torch.tensor([0, 2])

    def step() -> None:
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()

    step()  # the zero gamma passes gradient only to the block's norm at first ...
    for name, block in blocks.items():
        assert not torch.equal(block.norm.weight, before[name]["norm.weight"]), name
    step()  # ... after which the embeddings learn too
    for name, block in blocks.items():
        for key in ("conv_theta.weight", "conv_phi.weight", "conv_g.weight", "conv_out.weight"):
            assert not torch.equal(block.state_dict()[key], before[name][key]), f"{name}.{key}"


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = nlzoo.load("r2plus1d_18_nl", pretrained=False, num_classes=5, dropout=0.5)
    folder = nlzoo.save_pretrained(model, tmp_path / "r2p1d")
    loaded = nlzoo.load(folder)
    assert type(loaded) is TorchvisionVideoResNet and loaded.arch == "r2plus1d_18" and loaded.num_classes == 5
    x = torch.randn(*CLIP)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model.eval()(x))
    s3d = nlzoo.load("s3d_nl", pretrained=False, num_classes=4)
    again = nlzoo.load(nlzoo.save_pretrained(s3d, tmp_path / "s3d"))
    assert again.state_dict().keys() == s3d.state_dict().keys()
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in s3d.state_dict().items())


def test_kinetics400_tag_through_torchvision_weights_api(fake_download: dict[str, Any], tmp_path: Path) -> None:
    model = nlzoo.load("r3d_18_nl.kinetics400", cache_dir=tmp_path).eval()
    assert fake_download["url"] == tv_video.R3D_18_Weights.KINETICS400_V1.url
    assert fake_download["weights_only"] is True and fake_download["check_hash"] is True
    assert fake_download["model_dir"] == str(tmp_path)
    x = torch.randn(*CLIP)
    with torch.no_grad():
        torch.testing.assert_close(model(x), fake_download["references"]["r3d_18"](x), rtol=1e-4, atol=1e-5)
    cfg = model.nlzoo_config
    assert cfg.pretrained_tag == "kinetics400" and cfg.provenance["dataset"] == "Kinetics-400"
    assert cfg.label_names == list(tv_video.R3D_18_Weights.KINETICS400_V1.meta["categories"])
    assert len(cfg.label_names) == 400 and cfg.label_names[0] == "abseiling"
    data = cfg.data_config
    assert (data.crop_size, data.num_frames, data.test_scale, data.test_clips) == ((112, 112), 16, 128, 5)
    assert data.mean == (0.43216, 0.394666, 0.37645) and data.std == (0.22803, 0.22145, 0.216989)
    tag = model_info("r3d_18_nl").tags["kinetics400"]
    assert tag.metrics == {"top1": 63.2, "top5": 83.479} and tag.partial == ("*_nonlocal.*",)


@pytest.mark.parametrize(
    ("arch", "head_key", "head_shape"), [("s3d", "classifier.1", (7, 1024, 1, 1, 1)), ("r3d_18", "fc", (7, 512))]
)
def test_new_num_classes_reinitialises_the_head_and_says_so(
    fake_download: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    arch: str,
    head_key: str,
    head_shape: tuple[int, ...],
) -> None:
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        model = nlzoo.load(f"{arch}_nl.kinetics400", num_classes=7, cache_dir=tmp_path)
    assert "re-initialised the classifier" in caplog.text and f"{head_key}.weight" in caplog.text
    assert model.get_classifier().weight.shape == head_shape and model.nlzoo_config.label_names is None
    reference = fake_download["references"][arch].state_dict()
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in reference.items() if not k.startswith(head_key))


def test_s3d_data_config_and_metrics_come_from_torchvision() -> None:
    source = model_info("s3d_nl").tags["kinetics400"].source
    data = model_info("s3d_nl").data_config
    assert data == source.data_config()
    assert (data.crop_size, data.num_frames, data.test_scale, data.test_clips) == ((224, 224), 128, 256, 1)
    assert source.metrics() == {"top1": 68.368, "top5": 88.05}
    assert model_info("s3d_nl").classifier == "classifier.1"


def test_offline_mode_needs_the_cached_file(fake_download: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"r2plus1d_18-91a641e6\.pth"):
        nlzoo.load("r2plus1d_18.kinetics400", cache_dir=tmp_path, local_files_only=True)
    assert "url" not in fake_download
    (tmp_path / "r2plus1d_18-91a641e6.pth").touch()
    model = nlzoo.load("r2plus1d_18.kinetics400", cache_dir=tmp_path, local_files_only=True)
    assert fake_download["url"].endswith("r2plus1d_18-91a641e6.pth") and model.num_classes == 400


def test_head_contract_and_input_errors() -> None:
    model = TorchvisionVideoResNet("mc3_18", num_classes=0).eval()
    assert isinstance(model.get_classifier(), nn.Identity)
    with torch.no_grad():
        assert model(torch.randn(*CLIP)).shape == (2, 512)
    model.reset_classifier(3)
    assert model.num_classes == 3 and model.get_classifier().out_features == 3
    s3d = TorchvisionS3D(num_classes=0, nonlocal_after=())
    assert isinstance(s3d.get_classifier(), nn.Identity) and s3d.num_features == 1024
    s3d.reset_classifier(9)
    assert isinstance(s3d.get_classifier(), nn.Conv3d) and s3d.get_classifier().out_channels == 9
    with pytest.raises(ValueError, match=r"permute\(0, 2, 1, 3, 4\)"):
        model(torch.randn(2, 4, 3, 64, 64))
    with pytest.raises(ValueError, match="arch must be one of"):
        TorchvisionVideoResNet("r3d_50")
    with pytest.raises(ValueError, match="num_classes must be"):
        TorchvisionS3D(num_classes=-1)
    with pytest.raises(TypeError, match="unexpected argument 'drop_out'"):
        nlzoo.load("r3d_18_nl", pretrained=False, drop_out=0.5)
