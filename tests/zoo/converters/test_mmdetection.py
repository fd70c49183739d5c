"""mmdetection Mask R-CNN (GCNet) checkpoints: key layout, class rows, format detection, strict failures.

The checkpoint is written here from an nlzoo model by an independent inverse of the converter: nlzoo keys are
parsed structurally and re-spelled in mmdetection's names (mmdet ResNet + mmcv ContextBlock plugin
``context_block``, FPN ``lateral_convs`` / ``fpn_convs``, RPNHead, Shared2FCBBoxHead, FCNMaskHead), and the
class rows are taken from torchvision's COCO ids into mmdetection's contiguous order with background last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import nlzoo
from nlzoo.cli import main
from nlzoo.errors import ConversionError
from nlzoo.models.detection import gc_positions
from nlzoo.zoo import get_entry, model_info
from nlzoo.zoo.converters import convert_checkpoint, detect_format, read_checkpoint
from nlzoo.zoo.converters.mmdetection import ABSENT_LOGIT, MMDETECTION, adapt, coco_classes, place_class_rows
from nlzoo.zoo.download import sha256_prefix_in_name
from tests.zoo.converters.layouts import randomise

SMALL = {
    "min_size": 64,
    "max_size": 96,
    "box_score_thresh": 0.0,
    "box_detections_per_img": 4,
    "rpn_post_nms_top_n_test": 32,
}
CATEGORIES = model_info("maskrcnn_r50_fpn_gc").tags["coco_mmdet"].label_names
assert CATEGORIES is not None
REAL_IDS = [i for i, name in enumerate(CATEGORIES) if name not in ("__background__", "N/A")]
UNUSED_IDS = [i for i, name in enumerate(CATEGORIES) if name == "N/A"]


def to_mmdetection(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision/nlzoo Mask R-CNN keys -> mmdetection's, with mmdetection's class rows (background last)."""
    mmdet_rows = [*REAL_IDS, 0]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[:2] == ["backbone", "body"]:
            rest = parts[2:]
            if len(rest) > 3 and rest[2].endswith("_nonlocal"):  # layerK.i.bnN_nonlocal.<module>...
                inner = ["conv_mask" if rest[3] == "conv_phi" else rest[3], *rest[4:]]
                out[".".join(["backbone", rest[0], rest[1], "context_block", *inner])] = value
            else:
                out[".".join(["backbone", *rest])] = value
                if rest[-1] == "running_var":  # mmdet's BatchNorm2d counts batches
                    out[".".join(["backbone", *rest[:-1], "num_batches_tracked"])] = torch.tensor(7)
        elif parts[:2] == ["backbone", "fpn"]:
            name = {"inner_blocks": "lateral_convs", "layer_blocks": "fpn_convs"}[parts[2]]
            out[f"neck.{name}.{parts[3]}.conv.{parts[-1]}"] = value
        elif parts[:2] == ["rpn", "head"]:
            name = {"conv": "rpn_conv", "cls_logits": "rpn_cls", "bbox_pred": "rpn_reg"}[parts[2]]
            out[f"rpn_head.{name}.{parts[-1]}"] = value
        elif parts[1] == "box_head":
            out[f"roi_head.bbox_head.shared_fcs.{int(parts[2].removeprefix('fc')) - 6}.{parts[-1]}"] = value
        elif parts[1] == "mask_head":
            out[f"roi_head.mask_head.convs.{parts[2]}.conv.{parts[-1]}"] = value
        elif parts[2] == "conv5_mask":
            out[f"roi_head.mask_head.upsample.{parts[-1]}"] = value
        elif parts[2] == "cls_score":
            out[f"roi_head.bbox_head.fc_cls.{parts[-1]}"] = value[mmdet_rows]
        elif parts[2] == "bbox_pred":
            per_class = value.reshape(len(CATEGORIES), 4, *value.shape[1:])[REAL_IDS]
            out[f"roi_head.bbox_head.fc_reg.{parts[-1]}"] = per_class.reshape(-1, *value.shape[1:])
        elif parts[2] == "mask_fcn_logits":
            out[f"roi_head.mask_head.conv_logits.{parts[-1]}"] = value[REAL_IDS]
        else:
            raise AssertionError(f"no mmdetection name for {key}")
    return out


def _source_model() -> nn.Module:
    """A random r18 GCNet Mask R-CNN (every value matters, GC blocks far from identity) whose unused COCO ids
    hold what the converter writes there (and background box / mask rows, which mmdetection lacks, zeros), so a
    round trip can be exact."""
    model = randomise(nlzoo.load("maskrcnn_r18_fpn_gc", pretrained=False, **SMALL))
    heads = model.roi_heads
    no_rows = [0, *UNUSED_IDS]
    with torch.no_grad():
        heads.box_predictor.cls_score.weight[UNUSED_IDS] = 0
        heads.box_predictor.cls_score.bias[UNUSED_IDS] = ABSENT_LOGIT
        heads.box_predictor.bbox_pred.weight.view(len(CATEGORIES), 4, -1)[no_rows] = 0
        heads.box_predictor.bbox_pred.bias.view(len(CATEGORIES), 4)[no_rows] = 0
        heads.mask_predictor.mask_fcn_logits.weight[no_rows] = 0
        heads.mask_predictor.mask_fcn_logits.bias[no_rows] = 0
        heads.box_predictor.cls_score.bias[REAL_IDS] += 3.0  # real classes well above the 0.05 score threshold
    return model


def _write(model: nn.Module, path: Path, *, meta: dict[str, Any] | None = None, **edits: Any) -> Path:
    weights = to_mmdetection(model.state_dict())
    for key, value in edits.items():
        key = key.replace("__", ".")
        if value is None:
            del weights[key]
        else:
            weights[key] = value
    torch.save({"state_dict": weights, "meta": meta or {"mmdet_version": "2.0.0", "CLASSES": coco_classes()}}, path)
    return path


@pytest.fixture(scope="module")
def source() -> nn.Module:
    return _source_model()


@pytest.fixture(scope="module")
def converted(source: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path, Path]:
    tmp = tmp_path_factory.mktemp("mmdet")
    model = source
    path = _write(model, tmp / "mask_rcnn_r18_gcb.pth")
    return model, path, convert_checkpoint(None, "maskrcnn_r18_fpn_gc", path, tmp / "out")


def test_round_trip_is_exact_and_detects_the_same(converted: tuple[nn.Module, Path, Path]) -> None:
    model, _, out = converted
    loaded = nlzoo.load(out, **SMALL).eval()
    theirs, ours = model.state_dict(), loaded.state_dict()
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    images = [torch.rand(3, 70, 90), torch.rand(3, 64, 64)]
    with torch.no_grad():
        expected, got = model(images), loaded(images)
    for mine, ref in zip(got, expected, strict=True):
        assert len(ref["boxes"]) > 0 and set(ref["labels"].tolist()) <= set(REAL_IDS)
        for key in ref:
            assert torch.equal(mine[key], ref[key]), key
    cfg = loaded.nlzoo_config
    conversion = cfg.provenance["conversion"]
    assert conversion["source_format"] == "mmdetection" and conversion["detected"] is True
    assert "category ids" in conversion["adapted"] and cfg.num_classes == 91
    assert cfg.model_args["nonlocal_args"]["fusion_args"] == {"ratio": 0.25, "fusion_types": ["channel_add"]}


def test_the_format_is_detected_from_content(converted: tuple[nn.Module, Path, Path]) -> None:
    _, path, _ = converted
    assert detect_format(read_checkpoint(path)) is MMDETECTION


def test_each_mmdetection_class_row_lands_at_its_coco_id() -> None:
    rows, width = 81, 1024
    mapped = {
        "roi_heads.box_predictor.cls_score.weight": torch.arange(rows).float()[:, None].expand(rows, width),
        "roi_heads.box_predictor.cls_score.bias": torch.arange(rows).float(),
        "roi_heads.box_predictor.bbox_pred.weight": torch.arange(80 * 4).float()[:, None].expand(320, width),
        "roi_heads.box_predictor.bbox_pred.bias": torch.arange(80 * 4).float(),
        "roi_heads.mask_predictor.mask_fcn_logits.weight": torch.arange(80)
        .float()
        .view(80, 1, 1, 1)
        .expand(80, 4, 1, 1),
        "roi_heads.mask_predictor.mask_fcn_logits.bias": torch.arange(80).float(),
    }
    out, _ = place_class_rows(mapped, {"state_dict": {}, "meta": {}})
    stop_sign = coco_classes().index("stop sign")  # mmdetection row 11, COCO category id 13
    assert (stop_sign, CATEGORIES.index("stop sign")) == (11, 13)
    assert out["roi_heads.box_predictor.cls_score.bias"][13] == 11
    assert out["roi_heads.box_predictor.cls_score.weight"][13, 0] == 11
    assert out["roi_heads.box_predictor.cls_score.bias"][0] == 80  # background: mmdetection's last row
    assert out["roi_heads.box_predictor.bbox_pred.bias"][4 * 13 : 4 * 14].tolist() == [44, 45, 46, 47]
    assert out["roi_heads.mask_predictor.mask_fcn_logits.bias"][13] == 11
    assert out["roi_heads.box_predictor.cls_score.bias"][CATEGORIES.index("toothbrush")] == 79
    absent = UNUSED_IDS[0]  # id 12 has no category
    assert out["roi_heads.box_predictor.cls_score.bias"][absent] == ABSENT_LOGIT
    assert not out["roi_heads.box_predictor.cls_score.weight"][absent].any()
    assert not out["roi_heads.box_predictor.bbox_pred.bias"][4 * absent : 4 * absent + 4].any()

    # Class names recorded in meta decide the rows: a checkpoint listing "toothbrush" first puts row 0 there.
    names = ("toothbrush", *coco_classes()[:-1])
    out, _ = place_class_rows(mapped, {"meta": {"CLASSES": names}})
    assert out["roi_heads.box_predictor.cls_score.bias"][CATEGORIES.index("toothbrush")] == 0
    assert out["roi_heads.box_predictor.cls_score.bias"][1] == 1  # person, second in that list

    # Classes that are not COCO's get torchvision's contiguous order; class-agnostic masks go to every class.
    small = {
        "roi_heads.box_predictor.cls_score.weight": torch.arange(4).float()[:, None].expand(4, 8),
        "roi_heads.box_predictor.cls_score.bias": torch.arange(4).float(),
        "roi_heads.mask_predictor.mask_fcn_logits.weight": torch.ones(1, 4, 1, 1),
        "roi_heads.mask_predictor.mask_fcn_logits.bias": torch.full((1,), 5.0),
    }
    out, how = place_class_rows(small, {"meta": {"CLASSES": ("cat", "kettle", "dog")}})
    assert out["roi_heads.box_predictor.cls_score.bias"].tolist() == [3, 0, 1, 2] and "background 0" in how
    assert out["roi_heads.mask_predictor.mask_fcn_logits.bias"].tolist() == [0, 5, 5, 5]


def test_r50_keys_put_context_blocks_after_bn3() -> None:
    with torch.device("meta"):
        model = nlzoo.load("maskrcnn_r50_fpn_gc", pretrained=False)
    state = model.state_dict()
    mapped = MMDETECTION.map_keys(to_mmdetection(state))
    mapped, _ = adapt(mapped, {})
    assert mapped.keys() == state.keys()
    assert "backbone.body.layer2.0.bn3_nonlocal.conv_phi.weight" in mapped
    assert len(gc_positions(50)) == 4 + 6 + 3 and gc_positions(50)[-1] == "backbone.body.layer4.2.bn3"


def test_a_missing_or_extra_key_fails_naming_it(
    source: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = source
    missing = _write(model, tmp_path / "missing.pth", roi_head__mask_head__convs__3__conv__weight=None)
    with pytest.raises(ConversionError, match=r"1 missing: roi_heads\.mask_head\.3\.0\.weight"):
        convert_checkpoint("mmdetection", "maskrcnn_r18_fpn_gc", missing, tmp_path / "a")
    extra = _write(model, tmp_path / "extra.pth", roi_head__mask_iou_head__fc__weight=torch.zeros(2))
    argv = ["convert", "--source", "mmdetection", "--model", "maskrcnn_r18_fpn_gc", str(extra), str(tmp_path / "b")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "roi_head.mask_iou_head.fc.weight" in err and "nothing was written" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    plain = ["convert", "--model", "maskrcnn_r18_fpn", str(_write(model, tmp_path / "gc.pth")), str(tmp_path / "c")]
    assert main(plain) == 2
    err = capsys.readouterr().err
    assert "48 unexpected: backbone.body.layer2.0.bn2_nonlocal." in err  # 6 blocks x 8 tensors
    assert "looks like maskrcnn_r18_fpn_gc (ResNet-18-FPN, 6 context blocks inside residual blocks)" in err


def test_the_published_gcnet_checkpoints_are_ready_to_convert_tags() -> None:
    for depth, box_ap in ((50, 39.9), (101, 42.2)):
        tag = model_info(f"maskrcnn_r{depth}_fpn_gc").tags["coco_mmdet"]
        assert tag.status == "convertible" and tag.origin_format == "mmdetection" and tag.license == "apache-2.0"
        assert tag.metrics["box_AP"] == box_ap and tag.num_classes == 91 and tag.label_names == CATEGORIES
        assert tag.origin_url.startswith("https://download.openmmlab.com/mmdetection/v2.0/gcnet/")
        assert sha256_prefix_in_name(tag.origin_url) == {50: "17235656", 101: "af22dc9d"}[depth]  # checked on download
        assert "aligned=False" in tag.notes
    for name in ("coco_mmdet", "coco_mmdet_r16"):
        tag = model_info("maskrcnn_r50_fpn_gc").tags[name]
        with torch.device("meta"):  # the tag's settings are valid arguments and give mmdetection's ratio
            model = get_entry("maskrcnn_r50_fpn_gc").builder(**tag.model_args, num_classes=tag.num_classes)
        ratio = 4 if name == "coco_mmdet" else 16
        assert model.backbone.body.layer3[0].bn3_nonlocal.channel_add_conv[0].out_channels == 1024 // ratio
    assert model_info("maskrcnn_r50_fpn_gc").default_tag == "coco_mmdet"
