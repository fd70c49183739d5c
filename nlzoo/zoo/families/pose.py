"""Registry entries for top-down pose estimation: SimpleBaseline ResNets, plain and with non-local blocks.

Names: ``simplebaseline_r{depth}`` (Xiao et al., ECCV 2018), ``..._nl`` (one non-local block right before the
last residual block of res4 = timm's ``layer3``, the paper's backbone placement for COCO detection and
keypoints, Table 5/6), ``..._nl_head`` (that block plus one after each of the head's three deconv stages, the
SimpleBaseline analogue of the paper's "+4 in head"). Inputs are 256x192 person crops, heatmaps 64x48, 17 COCO
joints (``num_classes`` = joints).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...models.pose import TopDownPoseModel
from ..config import IMAGENET_MEAN, IMAGENET_STD, DataConfig, PretrainedTag, WeightSource
from ..registry import register_variant
from .sources import TimmWeights

COCO_TOPDOWN_256X192 = DataConfig(crop_size=(256, 192), mean=IMAGENET_MEAN, std=IMAGENET_STD)
COCO_JOINTS = 17

_LAYER3_BLOCKS = {18: 2, 50: 6, 101: 23, 152: 36}
BACKBONE_PREFIX = "backbone."


@dataclass(frozen=True)
class BackboneWeights:
    """Classification weights for a model's ``backbone`` submodule: keys prefixed, classifier keys dropped.

    ``source`` fetches in the backbone's own key space (timm's); this maps ``k`` to ``backbone.k`` and drops
    keys matching ``drop`` (the ImageNet classifier, which a pose model does not have).
    """

    source: WeightSource
    prefix: str = BACKBONE_PREFIX
    drop: tuple[str, ...] = ("fc.*",)

    def describe(self) -> str:
        return f"{self.source.describe()} -> {self.prefix.rstrip('.')} (its classifier dropped)"

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        backbone = model.get_submodule(self.prefix.rstrip("."))
        state_dict = self.source.fetch(backbone, cache_dir=cache_dir, local_files_only=local_files_only)
        return {
            self.prefix + k: v for k, v in state_dict.items() if not any(fnmatch.fnmatchcase(k, p) for p in self.drop)
        }


def _imagenet_tag(depth: int) -> PretrainedTag:
    timm_name = f"resnet{depth}.tv_in1k"
    return PretrainedTag(
        tag="imagenet",
        dataset="ImageNet-1k (backbone only)",
        num_classes=COCO_JOINTS,
        status="available",
        source=BackboneWeights(TimmWeights(timm_name)),
        partial=("head.*", "*_nonlocal.*"),
        origin_url=f"https://huggingface.co/timm/{timm_name}",
        license="bsd-3-clause",
        verified="key mapping tested with a random timm state dict: every backbone key loads, "
        "only head and non-local keys keep their init",
        notes="SimpleBaseline's initialisation (torchvision ImageNet ResNet); the deconv head is new and the "
        "non-local blocks start as identities. Train on COCO keypoints with recipes/pose/.",
    )


def _make_entry(depth: int, placement: str) -> None:
    name = f"simplebaseline_r{depth}" + ("" if placement == "none" else f"_{placement}")
    arch: dict[str, Any] = {"backbone": f"resnet{depth}"}
    if placement in ("nl", "nl_head"):
        arch["nonlocal_after"] = (f"layer3.{_LAYER3_BLOCKS[depth] - 2}",)
    if placement == "nl_head":
        arch["head_nonlocal_after"] = (0, 1, 2)

    blocks = ", ".join(arch.get("nonlocal_after", ())) or "none"
    head = ", ".join(f"deconv stage {i}" for i in arch.get("head_nonlocal_after", ())) or "none"
    globals()[name] = register_variant(
        name,
        TopDownPoseModel,
        arch,
        doc=f"SimpleBaseline ResNet-{depth} top-down pose model"
        f"{' with non-local blocks' if placement != 'none' else ''} (256x192 -> 64x48 heatmaps).\n\n"
        f"Non-local blocks in the backbone after: {blocks}; in the head after: {head}.",
        module=__name__,
        task="pose-estimation",
        data_config=COCO_TOPDOWN_256X192,
        tags=[_imagenet_tag(depth)],
        classifier="head.final_layer",
    )


for _depth in _LAYER3_BLOCKS:
    for _placement in ("none", "nl", "nl_head"):
        _make_entry(_depth, _placement)
