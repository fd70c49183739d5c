"""Registry entries for COCO detection, instance segmentation and keypoints: torchvision's R-CNNs + non-local.

Names (Wang et al., "Non-local Neural Networks", CVPR 2018, section 6, Tables 5 and 6):

* ``maskrcnn_r{50,101}_fpn`` and ``..._nl``: Mask R-CNN, plain and with one non-local block right before the
  last residual block of res4 (Table 5); ``fasterrcnn_r{50,101}_fpn[_nl]`` is the same without the mask head.
* ``keypointrcnn_r{50,101}_fpn``, ``..._nl_head`` (four blocks in the keypoint head, one after every two of
  its eight convs) and ``..._nl_head_backbone`` (those four plus the res4 block), as Table 6.

* ``maskrcnn_r{50,101}_fpn_gc``: GCNet (Cao et al., ICCVW 2019) as mmdetection configures it
  (``configs/gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py``): a context block (ratio 1/4, channel_add) inside
  every residual block of res3-res5, after ``bn3``, before the identity is added.

``r18`` versions of each are CPU-sized (the synthetic recipe); the paper used R50 and R101.

Tags: ``coco`` (R50 only) is torchvision's COCO checkpoint of the plain network; the non-local blocks start
as identities, so an ``_nl`` model with it predicts exactly what torchvision's model does until fine-tuned.
``imagenet`` is the backbone alone (torchvision's ImageNet ResNet via timm's copy), the paper's starting point.
``coco_mmdet`` / ``coco_mmdet_r16`` (GCNet, first = default) are mmdetection's published GCNet Mask R-CNNs,
converted on first load (:mod:`nlzoo.zoo.converters.mmdetection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...models.detection import KEYPOINT_HEAD_NONLOCAL, NonLocalRCNN, gc_positions, res4_nonlocal
from ..config import IMAGENET_MEAN, IMAGENET_STD, DataConfig, PretrainedTag
from ..meta import build_on_meta
from ..registry import register_variant
from .pose import BackboneWeights
from .sources import TimmWeights, TorchvisionWeights

# Short side 800 as the paper (a 640x480 COCO image becomes 800x1067, padded to a multiple of 32): the input
# at which FLOPs are counted. The model resizes and normalises internally (torchvision's transform).
COCO_DETECTION_800 = DataConfig(
    crop_size=(800, 1088), mean=IMAGENET_MEAN, std=IMAGENET_STD, train_scale=(800, 800), test_scale=800
)
_METRIC_NAMES = {"box_map": "box_AP", "mask_map": "mask_AP", "kp_map": "keypoint_AP"}
_CLASSIFIERS = {
    "fasterrcnn": ("roi_heads.box_predictor",),
    "maskrcnn": ("roi_heads.box_predictor", "roi_heads.mask_predictor.mask_fcn_logits"),
    "keypointrcnn": ("roi_heads.box_predictor",),
}
_TASKS = {"fasterrcnn": "detection", "maskrcnn": "detection", "keypointrcnn": "keypoints"}
_TITLES = {"fasterrcnn": "Faster R-CNN", "maskrcnn": "Mask R-CNN", "keypointrcnn": "Keypoint R-CNN"}
_COCO_WEIGHTS = {
    "fasterrcnn": "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
    "maskrcnn": "MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
    "keypointrcnn": "KeypointRCNN_ResNet50_FPN_Weights.COCO_V1",
}
# The paper's COCO val2017 numbers for the matching setting (Tables 5 and 6), quoted in the docs and recipes.
PAPER_RESULTS = {
    "maskrcnn_r50_fpn": {"box_AP": 38.0, "mask_AP": 34.6},
    "maskrcnn_r50_fpn_nl": {"box_AP": 39.0, "mask_AP": 35.5},
    "maskrcnn_r101_fpn": {"box_AP": 39.5, "mask_AP": 36.0},
    "maskrcnn_r101_fpn_nl": {"box_AP": 40.8, "mask_AP": 37.1},
    "keypointrcnn_r101_fpn": {"keypoint_AP": 65.1},
    "keypointrcnn_r101_fpn_nl_head": {"keypoint_AP": 66.0},
    "keypointrcnn_r101_fpn_nl_head_backbone": {"keypoint_AP": 66.5},
}


@dataclass(frozen=True)
class TorchvisionDetectionWeights(TorchvisionWeights):
    """A torchvision COCO detection checkpoint, checked against nlzoo's plain network of the same kind.

    ``arch`` is the detector kind (``"maskrcnn"`` ...). The checkpoint loads strictly into a plain
    :class:`~nlzoo.models.detection.NonLocalRCNN` (built on the meta device, no memory) and that model's
    state dict is returned, so a checkpoint that stops matching torchvision's layout fails here, by key.
    """

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        state_dict = self.download(cache_dir=cache_dir, local_files_only=local_files_only)
        meta = self.entry().meta
        reference = build_on_meta(
            NonLocalRCNN,
            kind=self.arch,
            num_classes=len(meta["categories"]),
            num_keypoints=len(meta.get("keypoint_names", ())) or 17,
        )
        reference.load_state_dict(state_dict, assign=True)
        return reference.state_dict()

    def metrics(self) -> dict[str, float]:
        """COCO val2017 AP as torchvision reports it: ``box_AP`` and ``mask_AP`` or ``keypoint_AP``."""
        (reported,) = self.entry().meta["_metrics"].values()
        return {_METRIC_NAMES[k]: v for k, v in reported.items() if k in _METRIC_NAMES}

    def data_config(self) -> DataConfig:
        return COCO_DETECTION_800


def _coco_tag(kind: str, with_nonlocal: bool) -> PretrainedTag:
    source = TorchvisionDetectionWeights(kind, _COCO_WEIGHTS[kind])
    weights = source.entry()
    blocks = (
        " The non-local blocks are not in these weights: they start as identities (the same detections as "
        "torchvision's model) and are learnt by fine-tuning (recipes/detection/)."
        if with_nonlocal
        else ""
    )
    return PretrainedTag(
        tag="coco",
        dataset="COCO 2017",
        num_classes=len(weights.meta["categories"]),
        status="available",
        source=source,
        label_names=source.label_names(),
        model_args={"frozen_bn_eps": 0.0},  # as torchvision's builder sets for these checkpoints
        partial=("*_nonlocal.*",),
        metrics=source.metrics(),
        origin_url=weights.url,
        license="bsd-3-clause (torchvision); COCO annotations cc-by-4.0",
        verified="offline, with a random torchvision state dict standing in for the download: keys load "
        "strictly and boxes, scores, labels, masks and keypoints equal torchvision's model exactly; the real "
        "checkpoint was not downloaded or evaluated by nlzoo",
        recipe=weights.meta["recipe"],
        notes=f"AP reported by torchvision for its plain network (COCO val2017).{blocks}",
    )


def _imagenet_tag(depth: int, num_classes: int) -> PretrainedTag:
    timm_name = f"resnet{depth}.tv_in1k"
    return PretrainedTag(
        tag="imagenet",
        dataset="ImageNet-1k (backbone only)",
        num_classes=num_classes,
        status="available",
        source=BackboneWeights(TimmWeights(timm_name), prefix="backbone.body.", drop=("fc.*", "*.num_batches_tracked")),
        partial=("backbone.fpn.*", "rpn.*", "roi_heads.*", "*_nonlocal.*"),
        origin_url=f"https://huggingface.co/timm/{timm_name}",
        license="bsd-3-clause",
        verified="key mapping tested with a random torchvision ResNet state dict: every ResNet key but fc "
        "loads into backbone.body; FPN, RPN, RoI heads and non-local blocks keep their init",
        notes="The paper's initialisation (an ImageNet ResNet); FPN, RPN and heads are new. Train on COCO with "
        "recipes/detection/.",
    )


# mmdetection's GCNet Mask R-CNNs (configs/gcnet/metafile.yml): (depth, ratio) -> (file stem, box AP, mask AP).
_MMDET_GCNET = "https://download.openmmlab.com/mmdetection/v2.0/gcnet"
MMDET_GCNET_CHECKPOINTS = {
    (50, 4): ("mask_rcnn_r50_fpn_r4_gcb_c3-c5_1x_coco", "20200204-17235656", 39.9, 36.0),
    (50, 16): ("mask_rcnn_r50_fpn_r16_gcb_c3-c5_1x_coco", "20200515_211915-187da160", 39.7, 35.9),
    (101, 4): ("mask_rcnn_r101_fpn_r4_gcb_c3-c5_1x_coco", "20200206-af22dc9d", 42.2, 37.8),
    (101, 16): ("mask_rcnn_r101_fpn_r16_gcb_c3-c5_1x_coco", "20200205-e58ae947", 41.3, 37.2),
}
_MMDET_RUNTIME = (
    " nlzoo runs the weights in torchvision's Mask R-CNN, whose test-time details differ from mmdetection's, so "
    "mmdetection's AP is not claimed to be reproduced exactly: RoIAlign with aligned=False and sampling_ratio=2 "
    "(mmdetection: aligned=True, adaptive sampling), anchors rounded to whole pixels (mmdetection: not rounded), "
    "resizing of the float image tensor and torchvision's mask pasting (mmdetection: image resize before "
    "normalisation, its own paste with a 0.5 threshold). Backbone, FPN, RPN and RoI heads compute the same "
    "functions: identical layers, anchor sizes and order, box coding (RoI stds 0.1/0.2 = torchvision's weights "
    "10/5) and class scores (81 real ones; the 10 unused COCO ids score 0)."
)


def _mmdet_tag(depth: int, ratio: int) -> PretrainedTag:
    stem, stamp, box_ap, mask_ap = MMDET_GCNET_CHECKPOINTS[(depth, ratio)]
    coco = TorchvisionDetectionWeights("maskrcnn", _COCO_WEIGHTS["maskrcnn"])
    args: dict[str, Any] = {"frozen_bn_eps": 1e-5}  # mmcv's BatchNorm eps
    if ratio != 4:
        args["nonlocal_args"] = {"fusion_args": {"ratio": 1 / ratio}}
    return PretrainedTag(
        tag="coco_mmdet" if ratio == 4 else f"coco_mmdet_r{ratio}",
        dataset="COCO 2017",
        num_classes=91,
        status="convertible",
        label_names=coco.label_names(),
        model_args=args,
        metrics={"box_AP": box_ap, "mask_AP": mask_ap},
        origin_url=f"{_MMDET_GCNET}/{stem}/{stem}_{stamp}.pth",
        origin_format="mmdetection",
        license="apache-2.0",
        verified="key layout and class rows only: a checkpoint written in mmdetection's layout (read from "
        "mmdetection's and mmcv's sources) from a random nlzoo model converts back exactly, with each class row "
        "at its COCO id and the same detections (tests/zoo/converters/test_mmdetection.py); the published file "
        "was not downloaded. The AP is mmdetection's; torchvision's runtime differs (RoIAlign aligned=False, "
        "sampling_ratio=2; rounded anchors; resize and mask pasting), so it is not claimed to be reproduced exactly",
        notes=f"mmdetection's GCNet Mask R-CNN R-{depth}-FPN, r{ratio} GC blocks in res3-res5 (config "
        f"configs/gcnet/{stem}.py, 1x schedule); box/mask AP as mmdetection reports them on COCO val2017."
        + _MMDET_RUNTIME
        + " License: that of the mmdetection repository.",
    )


def _make_entry(kind: str, depth: int, suffix: str, placement: Sequence[str], block: str = "nonlocal") -> None:
    name = f"{kind}_r{depth}_fpn{suffix}"
    default_classes = 2 if kind == "keypointrcnn" else 91
    tags = [_mmdet_tag(depth, r) for r in (4, 16) if block == "gc" and (depth, r) in MMDET_GCNET_CHECKPOINTS]
    tags += [_coco_tag(kind, bool(placement))] if depth == 50 else []
    tags.append(_imagenet_tag(depth, default_classes))
    arch: dict[str, Any] = {"kind": kind, "depth": depth, "num_classes": default_classes}
    arch["nonlocal_after"] = tuple(placement)
    if block != "nonlocal":
        arch["nonlocal_block"] = block
    paper = PAPER_RESULTS.get(name)
    what = "non-local block(s)" if block == "nonlocal" else f"{block!r} block(s) (nlzoo.layers preset)"
    globals()[name] = register_variant(
        name,
        NonLocalRCNN,
        arch,
        doc=f"{_TITLES[kind]} ResNet-{depth}-FPN (torchvision's) with {len(placement)} {what}.\n\n"
        f"Blocks after: {', '.join(placement) or 'none'}."
        + (f" The paper reports {paper} on COCO val2017." if paper else ""),
        module=__name__,
        task=_TASKS[kind],
        data_config=COCO_DETECTION_800,
        tags=tags,
        classifier=_CLASSIFIERS[kind],
    )


for _depth in (18, 50, 101):
    _res4 = (res4_nonlocal(_depth),)
    for _kind in ("maskrcnn", "fasterrcnn"):
        _make_entry(_kind, _depth, "", ())
        _make_entry(_kind, _depth, "_nl", _res4)
    _make_entry("maskrcnn", _depth, "_gc", gc_positions(_depth), block="gc")
    _make_entry("keypointrcnn", _depth, "", ())
    _make_entry("keypointrcnn", _depth, "_nl_head", KEYPOINT_HEAD_NONLOCAL)
    _make_entry("keypointrcnn", _depth, "_nl_head_backbone", (*_res4, *KEYPOINT_HEAD_NONLOCAL))
