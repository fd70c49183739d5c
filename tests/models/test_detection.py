"""torchvision's R-CNNs with non-local blocks: placement, exact parity with torchvision, tags, FLOPs, empty RoIs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
import torchvision.models._api
from torch import nn
from torchvision.models import detection as tv_detection
from torchvision.models import resnet18
from torchvision.ops.misc import FrozenBatchNorm2d

import nlzoo
from nlzoo.errors import UnknownNameError
from nlzoo.layers import NonLocalBlock, nonlocal_blocks
from nlzoo.models.detection import KEYPOINT_HEAD_NONLOCAL, NonLocalRCNN, gc_positions, res4_nonlocal
from nlzoo.zoo import hub, model_info
from nlzoo.zoo.complexity import measure_complexity

SMALL = {"min_size": 64, "max_size": 96, "box_score_thresh": 0.0, "box_detections_per_img": 4}
TORCHVISION = {
    "maskrcnn": tv_detection.maskrcnn_resnet50_fpn,
    "keypointrcnn": tv_detection.keypointrcnn_resnet50_fpn,
    "fasterrcnn": tv_detection.fasterrcnn_resnet50_fpn,
}


def _as_trained_torchvision(kind: str) -> nn.Module:
    """torchvision's builder as it is when its COCO weights load: FrozenBN with eps 0, here random statistics."""
    model = TORCHVISION[kind](weights=None, weights_backbone=None, **SMALL)
    for name, module in list(model.backbone.body.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(module.num_features, eps=0.0)
            frozen.weight.uniform_(0.5, 1.5)
            frozen.bias.normal_(0, 0.1)
            frozen.running_mean.normal_(0, 0.1)
            frozen.running_var.uniform_(0.5, 1.5)
            parent, _, child = name.rpartition(".")
            setattr(model.backbone.body.get_submodule(parent) if parent else model.backbone.body, child, frozen)
    return model.eval()


@pytest.fixture
def fake_download(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """torch.hub's download under torchvision's weights API replaced by a random torchvision detector."""
    calls: dict[str, Any] = {"references": {}}

    def load_state_dict_from_url(url: str, **kwargs: Any) -> dict[str, torch.Tensor]:
        kind = Path(url).name.split("_")[0]
        reference = _as_trained_torchvision(kind)
        calls.update(url=url, **kwargs)
        calls["references"][kind] = reference
        return reference.state_dict()

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", load_state_dict_from_url)
    return calls


def test_blocks_sit_where_the_paper_puts_them_and_plain_models_match_torchvision_sizes() -> None:
    expected = {
        "maskrcnn_r50_fpn_nl": [("backbone.body.layer3.4_nonlocal", 1024)],
        "maskrcnn_r101_fpn_nl": [("backbone.body.layer3.21_nonlocal", 1024)],
        "fasterrcnn_r18_fpn_nl": [("backbone.body.layer3.0_nonlocal", 256)],
        "keypointrcnn_r50_fpn_nl_head": [(f"roi_heads.keypoint_head.{i}_nonlocal", 512) for i in (3, 7, 11, 15)],
        "keypointrcnn_r101_fpn_nl_head_backbone": [("backbone.body.layer3.21_nonlocal", 1024)]
        + [(f"roi_heads.keypoint_head.{i}_nonlocal", 512) for i in (3, 7, 11, 15)],
    }
    for name, blocks in expected.items():
        with torch.device("meta"):
            model = nlzoo.load(name, pretrained=False)
        found = list(nonlocal_blocks(model))
        assert [(n, b.in_channels) for n, b in found] == blocks, name
        assert all(isinstance(b.norm, nn.GroupNorm) for _, b in found)
    for kind in ("maskrcnn", "keypointrcnn", "fasterrcnn"):  # torchvision's meta states num_params
        with torch.device("meta"):
            model = nlzoo.load(f"{kind}_r50_fpn", pretrained=False)
        source = model_info(f"{kind}_r50_fpn").tags["coco"].source
        assert sum(p.numel() for p in model.parameters()) == source.entry().meta["num_params"]
    assert res4_nonlocal(50) == "backbone.body.layer3.4"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "kind", "blocks"),
    [
        ("maskrcnn_r50_fpn_nl", "maskrcnn", 1),
        ("keypointrcnn_r50_fpn_nl_head_backbone", "keypointrcnn", 5),
        ("maskrcnn_r50_fpn_gc", "maskrcnn", 13),
    ],
)
def test_coco_tag_predicts_exactly_what_torchvision_predicts(
    fake_download: dict[str, Any], tmp_path: Path, name: str, kind: str, blocks: int
) -> None:
    model = nlzoo.load(f"{name}.coco", cache_dir=tmp_path, **SMALL).eval()
    assert fake_download["weights_only"] is True and fake_download["check_hash"] is True
    assert len(list(nonlocal_blocks(model))) == blocks
    reference = fake_download["references"][kind]
    images = [torch.rand(3, 70, 90), torch.rand(3, 64, 64)]
    with torch.no_grad():
        ours, theirs = model(images), reference(images)
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.keys() == ref.keys() and len(ref["boxes"]) > 0
        for key in ref:
            assert torch.equal(mine[key], ref[key]), key
    cfg = model.nlzoo_config
    assert cfg.task == ("detection" if kind == "maskrcnn" else "keypoints") and cfg.pretrained_tag == "coco"
    assert cfg.label_names[1] == "person"


def test_gc_blocks_sit_inside_every_res3_to_res5_block_after_the_last_norm() -> None:
    for depth, last_norm, count in ((50, "bn3", 4 + 6 + 3), (101, "bn3", 4 + 23 + 3), (18, "bn2", 2 + 2 + 2)):
        with torch.device("meta"):
            model = nlzoo.load(f"maskrcnn_r{depth}_fpn_gc", pretrained=False)
        found = dict(nonlocal_blocks(model))
        assert list(found) == [f"{p}_nonlocal" for p in gc_positions(depth)] and len(found) == count
        assert all(n.endswith(f".{last_norm}_nonlocal") for n in found)
        block = found[f"backbone.body.layer4.0.{last_norm}_nonlocal"]
        assert block.in_channels == (512 if depth == 18 else 2048) and (block.fusion, block.keys) == ("gc", "all")
        transform = block.channel_add_conv  # mmcv's ContextBlock: conv C -> C/4, LayerNorm([C/4, 1, 1]), ReLU, conv
        assert transform[0].out_channels == block.in_channels // 4
        assert isinstance(transform[1], nn.LayerNorm) and transform[1].normalized_shape == (
            block.in_channels // 4,
            1,
            1,
        )
        assert isinstance(transform[2], nn.ReLU) and transform[3].out_channels == block.in_channels
        assert block.conv_phi.out_channels == 1 and block.conv_phi.bias is not None  # mmcv's conv_mask


def test_a_gc_block_acts_on_the_residual_branch_before_the_identity_is_added() -> None:
    model = NonLocalRCNN("maskrcnn", depth=18, nonlocal_after=gc_positions(18), nonlocal_block="gc").eval()
    residual = model.backbone.body.layer2[0]
    gc = residual.bn2_nonlocal
    with torch.no_grad():
        gc.channel_add_conv[3].weight.normal_()
        gc.channel_add_conv[3].bias.normal_()
        x = torch.randn(2, 64, 16, 16)
        # .forward: bn2 without its hooks (the hook is what applies the GC block)
        branch = residual.bn2.forward(residual.conv2(residual.relu(residual.bn1(residual.conv1(x)))))
        expected = torch.relu(gc(branch) + residual.downsample(x))
        torch.testing.assert_close(residual(x), expected)
        assert not torch.allclose(gc(branch), branch)


def test_new_gc_blocks_leave_the_detector_unchanged() -> None:
    plain = NonLocalRCNN("maskrcnn", depth=18, **SMALL, rpn_post_nms_top_n_test=32).eval()
    gc = NonLocalRCNN(
        "maskrcnn", depth=18, nonlocal_after=gc_positions(18), nonlocal_block="gc", **SMALL, rpn_post_nms_top_n_test=32
    ).eval()
    with torch.no_grad():
        for module in plain.backbone.body.modules():
            if isinstance(module, FrozenBatchNorm2d):
                module.running_var.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    missing, unexpected = gc.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all("_nonlocal." in k for k in missing)
    images = [torch.rand(3, 70, 90), torch.rand(3, 64, 64)]
    with torch.no_grad():
        ours, theirs = gc(images), plain(images)
    for mine, ref in zip(ours, theirs, strict=True):
        assert len(ref["boxes"]) > 0
        for key in ref:
            assert torch.equal(mine[key], ref[key]), key


def test_new_num_classes_reinitialises_box_and_mask_predictors(
    fake_download: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        model = nlzoo.load("maskrcnn_r50_fpn.coco", num_classes=4, cache_dir=tmp_path, **SMALL)
    assert "re-initialised the classifier" in caplog.text and "mask_fcn_logits.weight" in caplog.text
    heads = model.roi_heads
    assert heads.box_predictor.cls_score.out_features == 4 and heads.box_predictor.bbox_pred.out_features == 16
    assert heads.mask_predictor.mask_fcn_logits.out_channels == 4 and model.num_classes == 4
    reference = fake_download["references"]["maskrcnn"].state_dict()
    ours = model.state_dict()
    kept = [k for k in reference if "box_predictor" not in k and "mask_fcn_logits" not in k]
    assert kept and all(torch.equal(ours[k], reference[k]) for k in kept)


def test_imagenet_tag_fills_the_backbone_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = resnet18().state_dict()  # torchvision keys, with fc and num_batches_tracked
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(weights, path)
    monkeypatch.setattr(hub, "hub_file", lambda repo, filename, **_: str(path))
    model = nlzoo.load("maskrcnn_r18_fpn_nl.imagenet", num_classes=5)
    state = model.state_dict()
    loaded = [k for k in weights if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert all(torch.equal(state[f"backbone.body.{k}"], weights[k]) for k in loaded)
    assert model.num_classes == 5 and model.nlzoo_config.pretrained_tag == "imagenet"


def test_keypoint_head_blocks_accept_no_detections() -> None:
    model = NonLocalRCNN(
        "keypointrcnn", depth=18, nonlocal_after=KEYPOINT_HEAD_NONLOCAL, min_size=64, max_size=64, box_score_thresh=1.1
    ).eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 64, 64)])
    assert out["boxes"].shape == (0, 4) and out["keypoints"].shape == (0, 17, 3)


def test_flops_of_the_block_at_800_pixels() -> None:
    base, nl = measure_complexity("maskrcnn_r50_fpn"), measure_complexity("maskrcnn_r50_fpn_nl")
    assert nl.input_shape == (3, 800, 1088) and nl.nonlocal_blocks == 1 and base.nonlocal_flops == 0
    assert 0 < nl.nonlocal_flops / nl.flops < 0.05  # the paper: "<5% computation"
    assert nl.flops - base.flops == nl.nonlocal_flops
    block = NonLocalBlock(1024, dims=2, norm="group")
    assert nl.params - base.params == sum(p.numel() for p in block.parameters())


def test_bad_arguments_say_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        NonLocalRCNN("retinanet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth must be one of"):
        NonLocalRCNN(depth=34)
    with pytest.raises(ValueError, match="counts the background"):
        NonLocalRCNN(num_classes=1)
    with pytest.raises(UnknownNameError, match="layer2.0.bn3"):
        NonLocalRCNN(depth=18, nonlocal_after=["backbone.body.layer2.0.bn3"], nonlocal_block="gc")  # r18: bn2
    with pytest.raises(TypeError, match="unexpected argument 'min_sizes'"):
        nlzoo.load("maskrcnn_r18_fpn", min_sizes=64, pretrained=False)
