"""timm's feature contract for every family: forward_intermediates, prune_intermediate_layers, feature_info,
and nlzoo.load(features_only=True)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import nlzoo
from nlzoo.errors import ConfigError, UnknownNameError
from nlzoo.layers import nonlocal_blocks
from nlzoo.models.features import FeaturesOnly, stage_index

# (name, input): one small network of each family, tiny inputs.
FAMILIES = [
    ("i3d_r18_nl", (2, 3, 4, 32, 32)),
    ("c2d_r50_nl", (1, 3, 2, 32, 32)),
    ("r3d_18_nl", (1, 3, 4, 32, 32)),
    ("mc3_18_nl", (1, 3, 4, 32, 32)),
    ("resnet18_nl", (2, 3, 64, 64)),
    ("simplebaseline_r18_nl", (1, 3, 64, 64)),
    pytest.param("s3d_nl", (1, 3, 13, 209, 209), marks=pytest.mark.slow),
]


def _model(name: str) -> torch.nn.Module:
    model = nlzoo.load(name, pretrained=False).eval()
    for _, block in nonlocal_blocks(model):  # active blocks, so a skipped block would show
        torch.nn.init.normal_(block.norm.weight, std=0.5)
    return model


@pytest.mark.parametrize(("name", "shape"), FAMILIES)
def test_intermediates_match_feature_info_and_feed_the_head(name: str, shape: tuple[int, ...]) -> None:
    model, x = _model(name), torch.randn(shape)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        logits = model(x)
        assert torch.equal(model.forward_head(final), logits)
    info = model.feature_info
    assert len(maps) == len(info) == 5
    for fmap, entry in zip(maps, info, strict=True):
        assert fmap.shape[0] == shape[0] and fmap.shape[1] == entry["num_chs"]
        assert fmap.shape[-1] == math.ceil(shape[-1] / entry["reduction"]), (entry, fmap.shape)
        assert isinstance(model.get_submodule(entry["module"]), torch.nn.Module)
    assert torch.equal(maps[-1], final)
    reductions = [entry["reduction"] for entry in info]
    assert reductions == sorted(reductions)


@pytest.mark.parametrize(("name", "shape"), FAMILIES[:5])
def test_features_only_outputs_the_chosen_stages_of_a_pruned_network(name: str, shape: tuple[int, ...]) -> None:
    model, x = _model(name), torch.randn(shape)
    with torch.no_grad():
        wanted = model.forward_intermediates(x, indices=[1, 3], intermediates_only=True)
        features = FeaturesOnly(copy.deepcopy(model), out_indices=(1, -2))
        got = features(x)
    assert features.out_indices == (1, 3)
    assert [torch.equal(g, w) for g, w in zip(got, wanted, strict=True)] == [True, True]
    assert features.feature_info.channels() == [model.feature_info[i]["num_chs"] for i in (1, 3)]
    assert features.feature_info.reduction() == [model.feature_info[i]["reduction"] for i in (1, 3)]
    assert features.feature_info.module_name() == [model.feature_info[i]["module"] for i in (1, 3)]
    last = model.feature_info[-1]["module"]
    assert sum(p.numel() for n, p in features.model.named_parameters() if n.startswith(last + ".")) == 0


def test_load_features_only_and_its_bad_input() -> None:
    features = nlzoo.load("i3d_r18_nl", pretrained=False, features_only=True, out_indices=(-1,))
    out = features(torch.randn(1, 3, 4, 32, 32))
    assert len(out) == 1 and out[0].shape == (1, 512, 2, 1, 1)
    assert features.nlzoo_config.architecture == "i3d_r18_nl"
    with pytest.raises(ConfigError, match="features_only=True"):
        nlzoo.load("i3d_r18_nl", pretrained=False, out_indices=(1,))
    with pytest.raises(ConfigError, match=r"out of range.*5 stages"):
        nlzoo.load("i3d_r18_nl", pretrained=False, features_only=True, out_indices=(5,))


def test_nonlocal_blocks_run_inside_their_stage() -> None:
    model = _model("i3d_r18_nl")
    ran = []
    for name, block in nonlocal_blocks(model):
        block.register_forward_hook(lambda *_, name=name: ran.append(name))
    model.forward_intermediates(torch.randn(1, 3, 4, 32, 32), indices=[2], intermediates_only=True)
    assert ran == ["layer2.1_nonlocal"]  # layer3's block lies after the last stage asked for
    assert model.feature_info[2]["module"] == "layer2"


def test_indices_stop_early_and_layout() -> None:
    model, x = _model("r3d_18_nl"), torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        every = model.forward_intermediates(x, intermediates_only=True)
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        final, maps = model.forward_intermediates(x, indices=[0, 2], stop_early=True)
        channels_last = model.forward_intermediates(x, indices=[-1], output_fmt="NTHWC", intermediates_only=True)
    assert [torch.equal(a, b) for a, b in zip(last_two, every[3:], strict=True)] == [True, True]
    assert torch.equal(final, every[2]) and torch.equal(maps[1], every[2])
    assert torch.equal(channels_last[0], every[-1].permute(0, 2, 3, 4, 1))
    with pytest.raises(ConfigError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NCHW")
    with pytest.raises(ConfigError, match="last 6 stages"):
        model.forward_intermediates(x, indices=6)


def test_prune_drops_the_head_and_later_stages() -> None:
    model, x = _model("i3d_r18_nl"), torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        wanted = model.forward_intermediates(x, indices=[2], intermediates_only=True)[0]
        assert model.prune_intermediate_layers([2]) == [2]
        pooled = model(x)
    assert model.num_features == 128 and len(model.feature_info) == 3
    assert torch.allclose(pooled, wanted.mean(dim=(2, 3, 4)), atol=1e-6)


def test_unknown_stage_name_suggests_close_matches() -> None:
    info = _model("i3d_r18_nl").feature_info
    assert stage_index(info, "layer3") == 3
    with pytest.raises(UnknownNameError, match=r"'layr3'.*Did you mean 'layer3'.*Stages: relu, layer1"):
        stage_index(info, "layr3")
