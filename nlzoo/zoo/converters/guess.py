"""Name the registered ResNet-3D a converted state dict looks like, so a wrong ``--model`` gets a hint."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ...models.resnet3d import DEPTHS, nonlocal_positions

_BLOCK = re.compile(r"layer([1-4])\.(\d+)\.conv1\.weight")
_NONLOCAL = re.compile(r"(layer[1-4]\.\d+)_nonlocal\.")


def guess_architecture(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """``"i3d_r50_nl"``-style name (with a short why) for nlzoo-named keys and shapes, or ``None``."""
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
