"""Test-side writers of checkpoints in each framework's documented layout, from an nlzoo model.

An independent inverse of the converters: nlzoo keys are parsed structurally here and re-spelled in each
framework's names (anchors-arch.md section 3), so a round trip through a converter proves every key and
reshape. Deliberately written without the converters' regexes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

BN_CAFFE2 = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
ABC = "abc"


class Place(NamedTuple):
    """Where a parameter sits: kind, stage (1..4 = res2..res5), block, sub-index, parameter name."""

    kind: str  # stem_conv stem_bn conv bn down_conv down_bn nl_conv nl_norm nl_pairwise fc
    stage: int
    block: int
    index: str
    param: str


def parse(key: str) -> Place:
    parts = key.split(".")
    if parts[0] == "conv1":
        return Place("stem_conv", 0, 0, "", parts[1])
    if parts[0] == "bn1":
        return Place("stem_bn", 0, 0, "", parts[1])
    if parts[0] == "fc":
        return Place("fc", 0, 0, "", parts[1])
    stage = int(parts[0].removeprefix("layer"))
    if parts[1].endswith("_nonlocal"):
        block = int(parts[1].split("_")[0])
        module = parts[2]
        if module.startswith("conv_"):
            return Place("nl_conv", stage, block, module.removeprefix("conv_"), parts[3])
        kind = {"norm": "nl_norm", "pairwise": "nl_pairwise"}[module]
        return Place(kind, stage, block, "", parts[3])
    block = int(parts[1])
    if parts[2] == "downsample":
        return Place("down_conv" if parts[3] == "0" else "down_bn", stage, block, "", parts[4])
    kind = "conv" if parts[2].startswith("conv") else "bn"
    return Place(kind, stage, block, parts[2][-1], parts[3])


def _abc(p: Place) -> str:
    return ABC[int(p.index) - 1]


def caffe2_name(p: Place) -> str | None:
    if p.param == "num_batches_tracked":
        return None  # Caffe2 keeps no such counter
    wb, bn = {"weight": "w", "bias": "b"}.get(p.param), BN_CAFFE2.get(p.param)
    res = f"res{p.stage + 1}_{p.block}"
    match p.kind:
        case "stem_conv":
            return "conv1_w"
        case "stem_bn":
            return f"res_conv1_bn_{bn}"
        case "fc":
            return f"pred_{wb}"
        case "conv":
            return f"{res}_branch2{_abc(p)}_w"
        case "bn":
            return f"{res}_branch2{_abc(p)}_bn_{bn}"
        case "down_conv":
            return f"{res}_branch1_w"
        case "down_bn":
            return f"{res}_branch1_bn_{bn}"
        case "nl_conv":
            return f"nonlocal_conv{p.stage + 1}_{p.block}_{p.index}_{wb}"
        case "nl_norm":
            return f"nonlocal_conv{p.stage + 1}_{p.block}_bn_{bn}"
    raise AssertionError(p)


def pyslowfast_name(p: Place) -> str | None:
    s, res = f"s{p.stage + 1}", f"s{p.stage + 1}.pathway0_res{p.block}"
    match p.kind:
        case "stem_conv":
            return f"s1.pathway0_stem.conv.{p.param}"
        case "stem_bn":
            return f"s1.pathway0_stem.bn.{p.param}"
        case "fc":
            return f"head.projection.{p.param}"
        case "conv":
            return f"{res}.branch2.{_abc(p)}.{p.param}"
        case "bn":
            return f"{res}.branch2.{_abc(p)}_bn.{p.param}"
        case "down_conv":
            return f"{res}.branch1.{p.param}"
        case "down_bn":
            return f"{res}.branch1_bn.{p.param}"
        case "nl_conv":
            return f"{s}.pathway0_nonlocal{p.block}.conv_{p.index}.{p.param}"
        case "nl_norm":
            return f"{s}.pathway0_nonlocal{p.block}.bn.{p.param}"
    raise AssertionError(p)


def mmaction2_name(p: Place) -> str | None:
    block = f"backbone.layer{p.stage}.{p.block}"
    nl = f"{block}.non_local_block"
    match p.kind:
        case "stem_conv":
            return f"backbone.conv1.conv.{p.param}"
        case "stem_bn":
            return f"backbone.conv1.bn.{p.param}"
        case "fc":
            return f"cls_head.fc_cls.{p.param}"
        case "conv":
            return f"{block}.conv{p.index}.conv.{p.param}"
        case "bn":
            return f"{block}.conv{p.index}.bn.{p.param}"
        case "down_conv":
            return f"{block}.downsample.conv.{p.param}"
        case "down_bn":
            return f"{block}.downsample.bn.{p.param}"
        case "nl_conv" if p.index == "out":
            return None if p.param == "bias" else f"{nl}.conv_out.conv.weight"  # mmcv: no bias before a norm
        case "nl_conv":
            wrapped = "" if p.index == "theta" else ".0"  # g and phi are Sequential(conv, pool) with sub_sample
            return f"{nl}.{p.index}{wrapped}.conv.{p.param}"
        case "nl_norm":
            return f"{nl}.conv_out.bn.{p.param}"
        case "nl_pairwise":
            return f"{nl}.concat_project.conv.{p.param}"
    raise AssertionError(p)


def pytorchvideo_name(p: Place) -> str | None:
    blocks = {1: 1, 2: 3, 3: 4, 4: 5}  # blocks.2 is the temporal max-pool
    res = f"blocks.{blocks.get(p.stage)}.res_blocks.{p.block}"
    match p.kind:
        case "stem_conv":
            return f"blocks.0.conv.{p.param}"
        case "stem_bn":
            return f"blocks.0.norm.{p.param}"
        case "fc":
            return f"blocks.6.proj.{p.param}"
        case "conv":
            return f"{res}.branch2.conv_{_abc(p)}.{p.param}"
        case "bn":
            return f"{res}.branch2.norm_{_abc(p)}.{p.param}"
        case "down_conv":
            return f"{res}.branch1_conv.{p.param}"
        case "down_bn":
            return f"{res}.branch1_norm.{p.param}"
    raise AssertionError(p)


def export(model: nn.Module, name_of: Callable[[Place], str | None]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        place = parse(key)
        name = name_of(place)
        if name is None:
            continue
        if place.kind == "nl_pairwise":  # mmcv's concat_project is a 1x1 Conv2d (1, 2d, 1, 1)
            value = value.reshape(1, -1, 1, 1)
        out[name] = value.clone()
    return out


def randomise(model: nn.Module, *, zero: tuple[str, ...] = ()) -> nn.Module:
    """Random weights and BN statistics everywhere (exact round trips need every value to matter)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=generator) * 0.05)
            if any(key.endswith(z) for z in zero):
                value.zero_()
    return model.eval()


def write_caffe2(model: nn.Module, path: Path, *, test_net_pred: bool = False, sgd_state: bool = True) -> Path:
    """``pickle.dump(dict(blobs=...))`` as video-nonlocal-net's save_model_params, with SGD state beside."""
    blobs: dict[str, object] = {k: v.numpy() for k, v in export(model, caffe2_name).items()}
    for name in [n for n in blobs if sgd_state and not n.endswith(("_rm", "_riv"))]:
        blobs[f"{name}_momentum"] = np.zeros_like(blobs[name])
    if test_net_pred:  # test nets store pred as a 1x1x1 conv
        blobs["pred_w"] = blobs["pred_w"].reshape(*blobs["pred_w"].shape, 1, 1, 1)
    blobs["lr"] = np.array(0.0001, dtype=np.float32)
    blobs["model_iter"] = 400000
    with path.open("wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    return path


def write_pyslowfast(model: nn.Module, path: Path, *, cfg: str | None) -> Path:
    checkpoint = {"epoch": 196, "model_state": export(model, pyslowfast_name), "optimizer_state": {}}
    if cfg is not None:
        checkpoint["cfg"] = cfg
    torch.save(checkpoint, path)
    return path


def write_mmaction2(model: nn.Module, path: Path) -> Path:
    meta = {"mmengine_version": "0.8.4", "epoch": 100, "iter": 0}
    torch.save({"meta": meta, "state_dict": export(model, mmaction2_name)}, path)
    return path


def write_pytorchvideo(model: nn.Module, path: Path) -> Path:
    torch.save({"model_state": export(model, pytorchvideo_name)}, path)
    return path
