from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import nlzoo
from nlzoo.layers import NonLocalBlock, nonlocal_blocks
from nlzoo.models import ResNet3d, inflate_state_dict, nonlocal_positions
from nlzoo.zoo import load_weights


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics so parity tests are not helped by identity norms."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_parameter_counts_match_the_published_models() -> None:
    # pytorchvideo's i3d_r50 has 28,043,472 parameters; mmaction2 lists 28.0M (I3D) and 35.4M (I3D + 5 NL).
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(nlzoo.load("i3d_r50", pretrained=False)) == 28_043_472
    assert count(nlzoo.load("i3d_r50_nl", pretrained=False)) == 35_401_936
    assert count(nlzoo.load("c2d_r50", pretrained=False)) < count(nlzoo.load("i3d_r50", pretrained=False))


def test_i3d_temporal_kernels_follow_the_authors_pattern() -> None:
    model = ResNet3d(50, temporal="i3d")
    kernels = [[blk.conv1.kernel_size[0] for blk in getattr(model, f"layer{s}")] for s in (1, 2, 3, 4)]
    assert kernels == [[3, 3, 3], [3, 1, 3, 1], [3, 1, 3, 1, 3, 1], [1, 3, 1]]
    assert model.conv1.kernel_size == (5, 7, 7)
    r101 = ResNet3d(101, temporal="i3d")
    assert [blk.conv1.kernel_size[0] for blk in r101.layer3] == [3, 1] * 11 + [3]
    c2d = ResNet3d(50, temporal="c2d")
    assert all(m.kernel_size[0] == 1 for m in c2d.modules() if isinstance(m, nn.Conv3d))


def test_nonlocal_placements() -> None:
    assert nonlocal_positions(50, "nl") == ("layer2.1", "layer2.3", "layer3.1", "layer3.3", "layer3.5")
    assert nonlocal_positions(101, "nl") == nonlocal_positions(50, "nl")
    assert len(nonlocal_positions(50, "nl10")) == 10
    assert nonlocal_positions(18, "nl") == ("layer2.1", "layer3.1")
    model = nlzoo.load("i3d_r50_nl", pretrained=False)
    names = [n for n, _ in nonlocal_blocks(model)]
    assert names == [n + "_nonlocal" for n in nonlocal_positions(50, "nl")]
    assert model.layer2[2].in_channels == 512 and model.layer3[2].in_channels == 1024
    assert all(b.instantiation == "embedded_gaussian" and b.subsample for _, b in nonlocal_blocks(model))


@pytest.mark.parametrize("instantiation", ["gaussian", "dot_product", "concatenation"])
def test_any_registered_instantiation_can_be_selected(instantiation: str) -> None:
    model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=3, nonlocal_args={"instantiation": instantiation})
    assert {b.instantiation for _, b in nonlocal_blocks(model)} == {instantiation}
    assert model(torch.randn(1, 3, 4, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize(("frames", "stride", "t_out"), [(8, 1, 4), (32, 1, 16), (32, 2, 4)])
def test_8x8_and_32x2_clips(frames: int, stride: int, t_out: int) -> None:
    model = nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=4, stem_temporal_stride=stride).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, frames, 64, 64))
    assert features.shape == (1, 512, t_out, 2, 2)
    assert model.forward_head(features).shape == (1, 4)


def test_c2d_on_one_frame_is_the_2d_network() -> None:
    net2d = _randomise_bn(timm.create_model("resnet18", num_classes=7)).eval()
    net3d = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=7).eval()
    report = load_weights(net3d, inflate_state_dict(net2d.state_dict(), net3d), partial=("*_nonlocal.*",))
    assert report.kept_init and all("_nonlocal." in k for k in report.kept_init)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(net3d(x.unsqueeze(2)), net2d(x), rtol=1e-4, atol=1e-5)


def test_i3d_on_a_constant_clip_reproduces_the_2d_features() -> None:
    net2d = _randomise_bn(timm.create_model("resnet18", num_classes=7)).eval()
    net3d = nlzoo.load("i3d_r18", pretrained=False, num_classes=7).eval()
    load_weights(net3d, inflate_state_dict(net2d.state_dict(), net3d))
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        f3 = net3d.forward_features(image.unsqueeze(2).expand(-1, -1, 48, -1, -1))  # (1, 512, 24, 2, 2)
        f2 = net2d.forward_features(image)
    # Zero temporal padding perturbs the clip ends; 5 frames of margin cover the inflated kernels' reach.
    for t in range(6, f3.shape[2] - 6):
        torch.testing.assert_close(f3[:, :, t], f2, rtol=1e-4, atol=1e-4)


def test_inflation_refuses_foreign_weights() -> None:
    net3d = nlzoo.load("i3d_r18", pretrained=False)
    with pytest.raises(ValueError, match="2D weights have keys the 3D model lacks"):
        inflate_state_dict({"head.weight": torch.zeros(1)}, net3d)
    with pytest.raises(ValueError, match="does not inflate"):
        inflate_state_dict({"conv1.weight": torch.zeros(64, 3, 3, 3)}, net3d)


def test_model_contract() -> None:
    model = nlzoo.load("c2d_r18", pretrained=False, num_classes=10)
    assert model.num_classes == 10 and model.num_features == 512
    assert model.get_classifier() is model.fc
    model.reset_classifier(3)
    assert model.fc.out_features == 3 and model.num_classes == 3
    model.eval()
    x = torch.randn(1, 3, 2, 32, 32)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (1, 512)
    model.reset_classifier(0)
    assert model(x).shape == (1, 512)


def test_a_new_model_has_identity_nonlocal_blocks() -> None:
    """The NL blocks of a fresh model change nothing: with and without them the outputs agree."""
    plain = nlzoo.load("c2d_r18", pretrained=False, num_classes=5).eval()
    with_nl = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=5).eval()
    load_weights(with_nl, plain.state_dict(), partial=("*_nonlocal.*",))
    x = torch.randn(1, 3, 4, 64, 64)
    torch.testing.assert_close(with_nl(x), plain(x), rtol=0, atol=0)
    assert all(isinstance(m, NonLocalBlock) for _, m in nonlocal_blocks(with_nl))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 8, 3, 64, 64), r"expects clips \(B, 3, T, H, W\).*got \(1, 8, 3, 64, 64\).*permute"),
        ((1, 3, 64, 64), r"expects clips \(B, 3, T, H, W\)"),
        ((1, 3, 4, 16, 16), r"clip of \(4, 16, 16\) \(T, H, W\) is too small.*32x32 pixels"),
    ],
)
def test_wrong_clip_shapes_are_clear_errors(shape: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nlzoo.load("c2d_r18", pretrained=False, num_classes=2)(torch.randn(shape))


def test_bad_architecture_arguments() -> None:
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNet3d(26)
    with pytest.raises(KeyError, match="no submodule 'layer2.9'"):
        ResNet3d(18, nonlocal_after=["layer2.9"])
    with pytest.raises(ValueError, match="non-local blocks go after residual blocks"):
        ResNet3d(18, nonlocal_after=["layer2"])


def test_video_network_keeps_bf16_through_its_pools() -> None:
    model = ResNet3d(18, temporal="i3d", num_classes=3, nonlocal_after=("layer2.1",)).eval()
    dtypes = {}
    for name in ("maxpool", "pool2", "layer2.1_nonlocal.pool"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(1, 3, 4, 32, 32))
    assert dtypes == dict.fromkeys(dtypes, torch.bfloat16) and len(dtypes) == 3
