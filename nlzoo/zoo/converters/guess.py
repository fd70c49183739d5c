"""Name the registered ResNet-3D or R-CNN a converted state dict looks like, so a wrong ``--model`` gets a hint."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ...models.resnet3d import DEPTHS, nonlocal_positions

_BLOCK = re.compile(r"layer([1-4])\.(\d+)\.conv1\.weight")
_NONLOCAL = re.compile(r"(layer[1-4]\.\d+)_nonlocal\.")
_DETECTOR_BLOCK = re.compile(r"backbone\.body\.layer([1-4])\.(\d+)\.conv1\.weight")


def guess_architecture(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """``"i3d_r50_nl"``-style name (with a short why) for nlzoo-named keys and shapes, or ``None``."""
    if any(k.startswith("backbone.body.") for k in shapes):
        return _guess_detector(shapes)
    counts = [0, 0, 0, 0]
    for key in shapes:
        match = _BLOCK.fullmatch(key)
        if match:
            stage, index = int(match[1]) - 1, int(match[2])
            counts[stage] = max(counts[stage], index + 1)
    bottleneck = any(k.endswith(".conv3.weight") for k in shapes)
    depth = next(
        (d for d, (kind, layers) in DEPTHS.items() if layers == tuple(counts) and (kind == "bottleneck") == bottleneck),
        None,
    )
    stem = shapes.get("conv1.weight")
    if depth is None or stem is None or len(stem) != 5:
        return None
    temporal = "i3d" if stem[2] > 1 else "c2d"
    after = tuple(sorted({m[1] for k in shapes if (m := _NONLOCAL.match(k))}, key=_block_order))
    placement = next((p for p in ("none", "nl", "nl10") if nonlocal_positions(depth, p) == after), None)
    name = f"{temporal}_r{depth}" + ("" if placement in (None, "none") else f"_{placement}")
    where = f"non-local blocks after {', '.join(after)}" if after else "no non-local blocks"
    extra = "" if placement else f" (an unregistered placement: pass nonlocal_after={list(after)})"
    return f"{name} (ResNet-{depth}, {temporal.upper()}, {where}){extra}"


def _block_order(name: str) -> tuple[int, int]:
    stage, index = name.removeprefix("layer").split(".")
    return int(stage), int(index)


def _guess_detector(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """``"maskrcnn_r50_fpn_gc"``-style name for torchvision R-CNN keys: depth from the blocks per stage, kind from
    the heads, blocks from the ``*_nonlocal`` keys (GCNet's inside residual blocks, the paper's after res4's)."""
    from ...models.detection import RESNET_LAYERS, res4_nonlocal  # torchvision's detection models: only when needed

    counts = [0, 0, 0, 0]
    for key in shapes:
        match = _DETECTOR_BLOCK.fullmatch(key)
        if match:
            counts[int(match[1]) - 1] = max(counts[int(match[1]) - 1], int(match[2]) + 1)
    depth = next((d for d, layers in RESNET_LAYERS.items() if layers == tuple(counts)), None)
    if depth is None:
        return None
    kind = next(
        (
            k
            for k, head in (("maskrcnn", "mask_predictor"), ("keypointrcnn", "keypoint_predictor"))
            if any(f"roi_heads.{head}." in key for key in shapes)
        ),
        "fasterrcnn",
    )
    gc = {key.split("_nonlocal.")[0] for key in shapes if re.search(r"\.bn[23]_nonlocal\.", key)}
    res4 = any(key.startswith(f"{res4_nonlocal(depth)}_nonlocal.") for key in shapes)
    suffix = "_gc" if gc else "_nl" if res4 else ""
    where = (
        f"{len(gc)} context blocks inside residual blocks"
        if gc
        else "a block before the last res4 block"
        if res4
        else "no blocks"
    )
    return f"{kind}_r{depth}_fpn{suffix} (ResNet-{depth}-FPN, {where})"
