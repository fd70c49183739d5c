"""Registry entries for the paper's video networks: C2D / I3D ResNet-18/34/50/101, plain and non-local.

Names follow the paper: ``{c2d,i3d}_r{depth}`` (baseline), ``..._nl`` (5 blocks: after res3 blocks 1,3 and
res4 blocks 1,3,5, as the authors' code and PySlowFast; R18 gets 2), ``..._nl10`` (every res3/res4 block).
"""

from __future__ import annotations

from typing import Any

from ...models.resnet3d import ResNet3d, nonlocal_positions
from ..config import KINETICS_MEAN, KINETICS_STD, DataConfig, PretrainedTag
from ..registry import register_variant
from .resnet3d_tags import KINETICS_TAGS
from .sources import TimmWeights

# PySlowFast's 8x8 Kinetics recipe (configs/Kinetics/I3D_NLN_8x8_R50.yaml): 8 frames every 8th, short side
# jittered in [256, 320], 224 crops; tested on 10 clips x 3 crops at short side 256.
KINETICS_8X8 = DataConfig(
    crop_size=(224, 224),
    mean=KINETICS_MEAN,
    std=KINETICS_STD,
    num_frames=8,
    sampling_rate=8,
    train_scale=(256, 320),
    test_scale=256,
    test_clips=10,
    test_crops=3,
)

_TIMM_2D = {18: "resnet18.tv_in1k", 34: "resnet34.tv_in1k", 50: "resnet50.tv_in1k", 101: "resnet101.tv_in1k"}


def _imagenet_tag(depth: int) -> PretrainedTag:
    timm_name = _TIMM_2D[depth]
    return PretrainedTag(
        tag="imagenet",
        dataset="ImageNet-1k",
        num_classes=1000,
        status="available",
        source=TimmWeights(timm_name, inflate=True),
        partial=("*_nonlocal.*",),
        origin_url=f"https://huggingface.co/timm/{timm_name}",
        license="bsd-3-clause",
        verified="inflation tested with random 2D weights: C2D on 1 frame = 2D logits; "
        "I3D on a constant clip = 2D features",
        notes="The paper's initialisation: 2D ImageNet weights inflated (kernel / t); "
        "non-local blocks start as identities.",
    )


def _make_entry(temporal: str, depth: int, placement: str, block: str = "nonlocal") -> None:
    suffix = "" if placement == "none" else f"_{placement}" if block == "nonlocal" else f"_{block}"
    name = f"{temporal}_r{depth}{suffix}"
    arch: dict[str, Any] = {
        "depth": depth,
        "temporal": temporal,
        "nonlocal_after": nonlocal_positions(depth, placement),
    }
    if block != "nonlocal":
        arch["nonlocal_args"] = {"block": block}
    blocks = len(arch["nonlocal_after"])
    kind = "non-local" if block == "nonlocal" else f"{block!r} (nlzoo.layers preset)"
    what = {"none": "baseline", "nl": f"with {blocks} {kind} blocks", "nl10": f"with {blocks} {kind} blocks"}

    globals()[name] = register_variant(
        name,
        ResNet3d,
        arch,
        doc=f"{temporal.upper()} ResNet-{depth} {what[placement]} (Wang et al., CVPR 2018).\n\n"
        f"Non-local blocks after: {', '.join(arch['nonlocal_after']) or 'none'}.",
        module=__name__,
        task="video-classification",
        data_config=KINETICS_8X8,
        tags=[*KINETICS_TAGS.get(name, ()), _imagenet_tag(depth)],  # the first is the default: the paper's weights
    )


for _temporal in ("c2d", "i3d"):
    for _depth in (18, 34, 50, 101):
        for _placement in ("none", "nl", "nl10"):
            _make_entry(_temporal, _depth, _placement)

# The family's blocks at the paper's 5 positions (nlzoo.layers presets), e.g. ``i3d_r50_gc``: same places as
# ``_nl``, so the members compare like for like. Each starts as the identity where its paper allows.
for _temporal in ("c2d", "i3d"):
    for _depth in (18, 50):
        for _block in ("gc", "dnl", "ann_apnb", "criss_cross", "efficient"):
            _make_entry(_temporal, _depth, "nl", block=_block)
