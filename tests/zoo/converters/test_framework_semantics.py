"""Converted nets compute what the source frameworks compute, checked against references of their formulas.

Key round trips prove names and shapes; these tests prove the settings the converters and tags choose:
mmcv's non-local block (phi/g pooled *after* their convs, no conv_out bias, optional scale), mmaction2's
stem (temporal stride 2 in conv1 and in a (1,3,3) max-pool), and the authors' Caffe2 stems
(video-nonlocal-net: unpadded max-pool; the 32-frame nets pool (2,3,3) with stride 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import nlzoo
from nlzoo.zoo import convert_checkpoint, model_info

from .layouts import randomise, write_mmaction2

MMACTION2_STEM = {"stem_temporal_stride": 2, "stem_pool_temporal_kernel": 1}


def mmcv_nonlocal3d(x: torch.Tensor, w: dict[str, torch.Tensor], mode: str, use_scale: bool) -> torch.Tensor:
    """mmcv ``NonLocal3d(sub_sample=True)`` written out: open-mmlab/mmcv mmcv/cnn/bricks/non_local.py."""
    n, c = x.shape[:2]
    inter = w["g.0.conv.weight"].shape[0]

    def conv(t: torch.Tensor, name: str) -> torch.Tensor:
        return F.conv3d(t, w[f"{name}.conv.weight"], w.get(f"{name}.conv.bias"))

    def pool(t: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(t, kernel_size=(1, 2, 2))

    g_x = pool(conv(x, "g.0")).view(n, inter, -1).permute(0, 2, 1)
    if mode == "gaussian":
        theta_x, phi_x = x.view(n, c, -1).permute(0, 2, 1), pool(x).view(n, c, -1)
    else:
        theta_x = conv(x, "theta").view(n, inter, -1)
        phi_x = pool(conv(x, "phi.0")).view(n, inter, -1)
        theta_x = theta_x.unsqueeze(-1) if mode == "concatenation" else theta_x.permute(0, 2, 1)
    if mode == "concatenation":
        h, m = theta_x.shape[2], phi_x.shape[2]
        pair = torch.cat([theta_x.repeat(1, 1, 1, m), phi_x.unsqueeze(2).repeat(1, 1, h, 1)], dim=1)
        weight = F.relu(F.conv2d(pair, w["concat_project.conv.weight"])).view(n, h, m)
        weight = weight / weight.shape[-1]
    else:
        weight = torch.matmul(theta_x, phi_x)
        if mode == "embedded_gaussian" and use_scale:
            weight = weight / theta_x.shape[-1] ** 0.5
        weight = weight / weight.shape[-1] if mode == "dot_product" else weight.softmax(dim=-1)
    y = torch.matmul(weight, g_x).permute(0, 2, 1).reshape(n, inter, *x.shape[2:])
    out = F.conv3d(y, w["conv_out.conv.weight"])
    bn = {k.removeprefix("conv_out.bn."): v for k, v in w.items() if k.startswith("conv_out.bn.")}
    out = F.batch_norm(out, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], False, 0.0, 1e-5)
    return x + out


@pytest.mark.parametrize(
    ("mode", "nonlocal_args"),
    [
        ("dot_product", {"instantiation": "dot_product"}),
        ("embedded_gaussian", {"instantiation": "embedded_gaussian", "softmax_scale": 1.0}),
        ("gaussian", {"instantiation": "gaussian"}),
        ("concatenation", {"instantiation": "concatenation"}),
    ],
)
def test_converted_mmaction2_blocks_compute_mmcvs_nonlocal(
    tmp_path: Path, mode: str, nonlocal_args: dict[str, Any]
) -> None:
    source = randomise(
        nlzoo.load(
            "i3d_r18_nl",
            pretrained=False,
            num_classes=3,
            **MMACTION2_STEM,
            nonlocal_args={**nonlocal_args, "pool_embeddings": True},
        ),
        zero=("_nonlocal.conv_out.bias",),
    )
    checkpoint = write_mmaction2(source, tmp_path / "mm.pth")
    args = {"nonlocal_args": nonlocal_args} if mode in ("dot_product", "embedded_gaussian") else {}
    converted = nlzoo.load(convert_checkpoint("mmaction2", "i3d_r18_nl", checkpoint, tmp_path / "out", **args)).eval()

    prefix = "backbone.layer2.1.non_local_block."
    mm_weights = torch.load(checkpoint, weights_only=True)["state_dict"]
    block_weights = {k.removeprefix(prefix): v for k, v in mm_weights.items() if k.startswith(prefix)}
    x = torch.randn(2, 128, 2, 6, 6)
    with torch.no_grad():
        want = mmcv_nonlocal3d(x, block_weights, mode, use_scale=False)
        got = converted.get_submodule("layer2.1_nonlocal")(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _stem(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.maxpool(model.relu(model.bn1(model.conv1(x))))


def _bn_relu(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    bn = model.bn1
    return F.relu(F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))


def test_mmaction2_stem_strides_time_in_conv1_and_pool(tmp_path: Path) -> None:
    """mmaction2 ResNet3d._make_stem_layer: conv (5,7,7) stride (2,2,2); max-pool (1,3,3) stride (2,2,2) pad (0,1,1)."""
    source = randomise(nlzoo.load("i3d_r18", pretrained=False, num_classes=3, **MMACTION2_STEM))
    checkpoint = write_mmaction2(source, tmp_path / "mm.pth")
    converted = nlzoo.load(convert_checkpoint("mmaction2", "i3d_r18", checkpoint, tmp_path / "out")).eval()
    x = torch.randn(1, 3, 16, 64, 64)
    w = torch.load(checkpoint, weights_only=True)["state_dict"]["backbone.conv1.conv.weight"]
    want = F.max_pool3d(_bn_relu(converted, F.conv3d(x, w, stride=2, padding=(2, 3, 3))), (1, 3, 3), 2, (0, 1, 1))
    with torch.no_grad():
        got = _stem(converted, x)
    assert got.shape == (1, 64, 4, 16, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("tag", "conv_stride", "pool_kernel", "pool_stride", "out_shape"),
    [
        # resnet_video.py (8-frame nets): pool1 kernels [1,3,3], strides [1,2,2], pads 0: 112 -> 55 px.
        ("kinetics400_vnl8x8", (1, 2, 2), (1, 3, 3), (1, 2, 2), (1, 64, 8, 55, 55)),
        # resnet_video_org.py (32-frame nets): conv1 stride 2 in time; pool1 kernels [2,3,3], strides [2,2,2].
        ("kinetics400_vnl32x2", (2, 2, 2), (2, 3, 3), (2, 2, 2), (1, 64, 8, 55, 55)),
    ],
)
def test_the_authors_caffe2_stems(
    tag: str, conv_stride: tuple[int, ...], pool_kernel: tuple[int, ...], pool_stride: tuple[int, ...], out_shape: tuple
) -> None:
    args = model_info(f"i3d_r50_nl.{tag}").tags[tag].model_args
    model = randomise(nlzoo.load("i3d_r18", pretrained=False, num_classes=3, **args))
    frames = 8 * conv_stride[0] * pool_stride[0]
    x = torch.randn(1, 3, frames, 224, 224)
    conv = F.conv3d(x, model.conv1.weight, stride=conv_stride, padding=(2, 3, 3))
    want = F.max_pool3d(_bn_relu(model, conv), pool_kernel, pool_stride, padding=0)
    with torch.no_grad():
        got = _stem(model, x)
    assert got.shape == out_shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
