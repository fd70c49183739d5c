"""mmdetection ``.pth`` checkpoints of Mask R-CNN ResNet-FPN, with or without GCNet's context blocks.

Container: ``{"state_dict": ..., "meta": ...}`` (mmcv / mmengine runner). Keys, from mmdetection's sources
(``mmdet/models/backbones/resnet.py``, ``necks/fpn.py``, ``dense_heads/rpn_head.py``,
``roi_heads/bbox_heads/convfc_bbox_head.py`` Shared2FCBBoxHead, ``roi_heads/mask_heads/fcn_mask_head.py``) and
mmcv's ``ContextBlock`` (``_abbr_ = 'context_block'``, built by ``build_plugin_layer`` with an empty postfix):

===========================================================  =====================================================
mmdetection                                                  nlzoo (torchvision's Mask R-CNN)
===========================================================  =====================================================
``backbone.{conv1,bn1}``, ``backbone.layerK.i.{convN,bnN}``,  ``backbone.body.`` + the same (torchvision's ResNet)
``backbone.layerK.i.downsample.{0,1}``
``backbone.layerK.i.context_block.conv_mask``                 ``backbone.body.layerK.i.bn3_nonlocal.conv_phi``
``backbone.layerK.i.context_block.channel_{add,mul}_conv.J``  ``backbone.body.layerK.i.bn3_nonlocal.channel_..._conv.J``
``neck.lateral_convs.i.conv`` / ``neck.fpn_convs.i.conv``     ``backbone.fpn.inner_blocks.i.0`` / ``layer_blocks.i.0``
``rpn_head.rpn_conv`` / ``rpn_cls`` / ``rpn_reg``             ``rpn.head.conv.0.0`` / ``cls_logits`` / ``bbox_pred``
``roi_head.bbox_head.shared_fcs.{0,1}``                       ``roi_heads.box_head.fc6`` / ``fc7``
``roi_head.bbox_head.fc_cls`` / ``fc_reg``                    ``roi_heads.box_predictor.cls_score`` / ``bbox_pred``
``roi_head.mask_head.convs.i.conv``                           ``roi_heads.mask_head.i.0``
``roi_head.mask_head.upsample`` / ``conv_logits``             ``roi_heads.mask_predictor.conv5_mask`` / ``..._logits``
===========================================================  =====================================================

The context block is mmdetection's plugin at ``after_conv3``: after a bottleneck's ``conv3`` + ``bn3``, before the
identity is added, which is where nlzoo's ``bn3_nonlocal`` runs (ResNet-18/34 basic blocks, for which mmdetection
has no plugins, take it after ``bn2``, their last norm). Its bottleneck ratio and fusion types are read from the
weights' shapes and names. ``pooling_type='avg'`` (no ``conv_mask``) has no nlzoo counterpart and is refused.

Class rows: mmdetection's heads have K contiguous classes, ``fc_cls`` with the background *last* (K + 1 rows),
class-specific ``fc_reg`` (4K rows) and ``conv_logits`` (K channels). torchvision's COCO models index rows by COCO
category id (91, background 0, ids without a category "N/A"), as nlzoo's COCO tags do. :func:`place_class_rows`
moves each row to its id (by the class names the file's ``meta["CLASSES"]`` records, else COCO's 80 in
category-id order, mmdetection's CocoDataset order); an "N/A" id gets a zero box / mask row and a zero-weight
classifier row with bias :data:`ABSENT_LOGIT`, so its softmax probability is 0 and the 81 real scores equal
mmdetection's. A checkpoint of another dataset (classes that are not COCO's) gets torchvision's contiguous layout:
background 0, class i at i + 1. Class-agnostic regression or masks are copied to every class (the same output).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import torch

from ...errors import ConversionError
from ..config import IMAGENET_MEAN, IMAGENET_STD
from .base import BN_ENTRY, SourceFormat

#: The classifier bias of a COCO category id no class uses: exp(-1e4) is 0 in float32 and bfloat16 alike.
ABSENT_LOGIT = -1.0e4

_BLOCK = r"backbone\.(layer[1-4]\.\d+)"
_GC = rf"{_BLOCK}\.context_block\."
_CLS = "roi_heads.box_predictor.cls_score"
_REG = "roi_heads.box_predictor.bbox_pred"
_MASK = "roi_heads.mask_predictor.mask_fcn_logits"


@cache
def coco_categories() -> tuple[str, ...]:
    """torchvision's 91 COCO labels by category id (``__background__`` at 0, ``N/A`` for unused ids)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    return tuple(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


def coco_classes() -> tuple[str, ...]:
    """COCO's 80 classes in category-id order: mmdetection's ``CocoDataset`` class order."""
    return tuple(c for c in coco_categories() if c not in ("__background__", "N/A"))


def class_names(payload: Any, num_classes: int) -> tuple[str, ...] | None:
    """The K class names of the checkpoint: ``meta["CLASSES"]`` (mmdet 2.x) or ``meta["dataset_meta"]["classes"]``
    (mmdet 3.x) when recorded, else COCO's 80 when K is 80, else ``None``."""
    meta = payload.get("meta") if isinstance(payload, Mapping) else None
    recorded = None
    if isinstance(meta, Mapping):
        recorded = meta.get("CLASSES")
        dataset_meta = meta.get("dataset_meta")
        if recorded is None and isinstance(dataset_meta, Mapping):
            recorded = dataset_meta.get("classes")
    if (
        isinstance(recorded, list | tuple)
        and len(recorded) == num_classes
        and all(isinstance(c, str) for c in recorded)
    ):
        return tuple(recorded)
    return coco_classes() if num_classes == len(coco_classes()) else None


def place_class_rows(mapped: Mapping[str, Any], payload: Any) -> tuple[dict[str, Any], str]:
    """The box and mask predictors' rows moved from mmdetection's layout to torchvision's (module docstring).

    Raises:
        ConversionError: ``fc_cls`` is missing, or the regression / mask rows fit no class count.
    """
    out = dict(mapped)
    if f"{_CLS}.weight" not in mapped:
        raise ConversionError("the mmdetection checkpoint has no roi_head.bbox_head.fc_cls: not a two-stage detector")
    num_classes = int(np.shape(mapped[f"{_CLS}.weight"])[0]) - 1
    names = class_names(payload, num_classes)
    categories = coco_categories()
    if names is not None and len(set(names)) == len(names) and all(n in categories for n in names):
        rows, width = [categories.index(n) for n in names], len(categories)
        how = (
            f"mmdetection's {num_classes} class rows (background last) placed at torchvision's COCO category ids "
            f"(background 0; the {width - 1 - num_classes} ids without a class score {ABSENT_LOGIT:g} and have zero "
            "box and mask rows)"
        )
    else:
        rows, width = [i + 1 for i in range(num_classes)], num_classes + 1
        how = f"mmdetection's {num_classes} class rows (background last) moved to torchvision's order (background 0)"
    cls_w, cls_b = _tensor(mapped[f"{_CLS}.weight"]), _tensor(mapped[f"{_CLS}.bias"])
    weight = cls_w.new_zeros(width, cls_w.shape[1])
    bias = cls_b.new_full((width,), ABSENT_LOGIT)
    weight[0], bias[0] = cls_w[-1], cls_b[-1]
    weight[rows], bias[rows] = cls_w[:-1], cls_b[:-1]
    out[f"{_CLS}.weight"], out[f"{_CLS}.bias"] = weight, bias
    for prefix, per_class in ((_REG, 4), (_MASK, 1)):
        if f"{prefix}.weight" in mapped:
            for entry in ("weight", "bias"):
                source = _tensor(mapped[f"{prefix}.{entry}"])
                out[f"{prefix}.{entry}"] = _spread(f"{prefix}.{entry}", source, rows, width, per_class)
    return out, how


def _spread(key: str, source: torch.Tensor, rows: list[int], width: int, per_class: int) -> torch.Tensor:
    """Per-class groups of ``per_class`` rows put at ``rows`` of a zero tensor of ``width`` groups."""
    count = source.shape[0] // per_class
    if source.shape[0] % per_class or count not in (1, len(rows)):
        raise ConversionError(
            f"{key}: {source.shape[0]} rows fit neither {len(rows)} classes x {per_class} nor one class-agnostic set"
        )
    groups = source.reshape(count, per_class, *source.shape[1:])
    if count == 1:  # class-agnostic: every class uses the same rows
        groups = groups.expand(len(rows), *groups.shape[1:])
    out = source.new_zeros(width, per_class, *source.shape[1:])
    out[rows] = groups
    return out.reshape(width * per_class, *source.shape[1:])


def _tensor(value: Any) -> torch.Tensor:
    return torch.from_numpy(np.asarray(value)) if isinstance(value, np.ndarray) else value.detach()


def adapt(mapped: Mapping[str, Any], payload: Any) -> tuple[dict[str, Any], str]:
    """Class rows to torchvision's layout and, in basic-block nets, context blocks after ``bn2`` (their last norm)."""
    out, how = place_class_rows(mapped, payload)
    if not any(re.fullmatch(r"backbone\.body\.layer\d\.\d+\.conv3\.weight", k) for k in out):
        out = {k.replace(".bn3_nonlocal.", ".bn2_nonlocal."): v for k, v in out.items()}
    return out, how


def context_block_settings(payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """GCNet's bottleneck ratio and fusion types, from the context blocks' weight shapes and names."""
    weights = payload.get("state_dict") if isinstance(payload, Mapping) else None
    if not isinstance(weights, Mapping):
        return {}, {}
    fusion_types, ratio, seen = [], None, None
    for kind in ("channel_add", "channel_mul"):
        first = next((k for k in weights if re.fullmatch(rf"{_GC}{kind}_conv\.0\.weight", str(k))), None)
        if first is None:
            continue
        fusion_types.append(kind)
        planes, channels = np.shape(weights[first])[:2]
        ratio, seen = planes / channels, f"{planes}/{channels} ({first})"
    if not fusion_types:
        return {}, {}
    args = {"instantiation": "context", "fusion_args": {"ratio": ratio, "fusion_types": tuple(fusion_types)}}
    return args, {"context_block fusion_types": tuple(fusion_types), "context_block ratio": seen}


MMDETECTION = SourceFormat(
    name="mmdetection",
    description="an mmdetection .pth (weights under 'state_dict', keys 'backbone.layerK...', 'roi_head...')",
    container="torch",
    weights_key="state_dict",
    signature=r"roi_head\.bbox_head\.fc_cls\.weight",
    rules=(
        (r"backbone\.conv1\.weight", lambda m: "backbone.body.conv1.weight"),
        (rf"backbone\.bn1\.{BN_ENTRY}", lambda m: f"backbone.body.bn1.{m[1]}"),
        (rf"{_BLOCK}\.(conv[123]\.weight)", lambda m: f"backbone.body.{m[1]}.{m[2]}"),
        (rf"{_BLOCK}\.(bn[123])\.{BN_ENTRY}", lambda m: f"backbone.body.{m[1]}.{m[2]}.{m[3]}"),
        (rf"{_BLOCK}\.downsample\.0\.weight", lambda m: f"backbone.body.{m[1]}.downsample.0.weight"),
        (rf"{_BLOCK}\.downsample\.1\.{BN_ENTRY}", lambda m: f"backbone.body.{m[1]}.downsample.1.{m[2]}"),
        (rf"{_GC}conv_mask\.(weight|bias)", lambda m: f"backbone.body.{m[1]}.bn3_nonlocal.conv_phi.{m[2]}"),
        (
            rf"{_GC}(channel_(?:add|mul)_conv\.[013]\.(?:weight|bias))",
            lambda m: f"backbone.body.{m[1]}.bn3_nonlocal.{m[2]}",
        ),
        (r"neck\.lateral_convs\.([0-3])\.conv\.(weight|bias)", lambda m: f"backbone.fpn.inner_blocks.{m[1]}.0.{m[2]}"),
        (r"neck\.fpn_convs\.([0-3])\.conv\.(weight|bias)", lambda m: f"backbone.fpn.layer_blocks.{m[1]}.0.{m[2]}"),
        (r"rpn_head\.rpn_conv\.(weight|bias)", lambda m: f"rpn.head.conv.0.0.{m[1]}"),
        (r"rpn_head\.rpn_cls\.(weight|bias)", lambda m: f"rpn.head.cls_logits.{m[1]}"),
        (r"rpn_head\.rpn_reg\.(weight|bias)", lambda m: f"rpn.head.bbox_pred.{m[1]}"),
        (
            r"roi_head\.bbox_head\.shared_fcs\.([01])\.(weight|bias)",
            lambda m: f"roi_heads.box_head.fc{int(m[1]) + 6}.{m[2]}",
        ),
        (r"roi_head\.bbox_head\.fc_cls\.(weight|bias)", lambda m: f"{_CLS}.{m[1]}"),
        (r"roi_head\.bbox_head\.fc_reg\.(weight|bias)", lambda m: f"{_REG}.{m[1]}"),
        (r"roi_head\.mask_head\.convs\.(\d+)\.conv\.(weight|bias)", lambda m: f"roi_heads.mask_head.{m[1]}.0.{m[2]}"),
        (r"roi_head\.mask_head\.upsample\.(weight|bias)", lambda m: f"roi_heads.mask_predictor.conv5_mask.{m[1]}"),
        (r"roi_head\.mask_head\.conv_logits\.(weight|bias)", lambda m: f"{_MASK}.{m[1]}"),
    ),
    # torchvision's FrozenBatchNorm2d keeps no counter; mmengine's data preprocessor mean/std are not weights.
    ignore=(r".*\.num_batches_tracked", r"data_preprocessor\..*"),
    zero_fill=("*.num_batches_tracked",),  # a trainable-BN backbone (backbone_norm="batch") counts from zero
    model_args={"frozen_bn_eps": 1e-5},  # mmcv's BN eps (torchvision's COCO checkpoints use 0)
    default_instantiation="context",
    data_config={"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    read_settings=context_block_settings,
    adapt=adapt,
    classifier=f"{_CLS}.weight",
)
