"""The authors' Caffe2 ``.pkl`` weights: video-nonlocal-net and PySlowFast's model-zoo ``I3D_NLN_8x8_R50.pkl``.

Container: ``pickle.dump(dict(blobs={name: ndarray}))`` written by Python 2 (video-nonlocal-net
``lib/utils/checkpoints.py``; its reader, like PySlowFast's, also takes the blob dict at the top level).
Besides weights the blobs hold SGD state (``*_momentum``), ``lr`` and ``model_iter``, which are skipped.
Read with :mod:`.safe_pickle`, never with plain ``pickle``.

Blob names (the authors' ConvNd / SpatialBN / FC prefixes; PySlowFast ``c2_model_loading.py``):
``conv1_w``, ``res_conv1_bn_{s,b,rm,riv}``, ``res{2..5}_{i}_branch2{a,b,c}_w`` and ``..._bn_*``,
``res{k}_0_branch1_w`` and ``..._bn_*``, ``nonlocal_conv{3,4}_{i}_{theta,phi,g,out}_{w,b}``,
``nonlocal_conv{3,4}_{i}_bn_*``, ``pred_{w,b}``. Kernels are already 5-D (O, I, T, H, W); ``pred_w`` is
(classes, 2048), or a 1x1x1 conv kernel in test nets.

``_riv`` holds the running *variance*, not its inverse: Caffe2's ``brew.spatial_bn`` creates the blob
initialised to 1.0 and passes it to SpatialBN as the variance input (caffe2/python/helpers/normalization.py,
whose Moments helper notes "this is just running variance"), and PySlowFast loads ``bn_riv`` into
``running_var`` unchanged (slowfast/utils/c2_model_loading.py, checkpoint.py).

The NL blocks are the paper's embedded Gaussian with the ``dim_inner ** -0.5`` scale (video-nonlocal-net
config: NONLOCAL.USE_SOFTMAX = USE_SCALE = True), nlzoo's default. The authors' own nets pad the stem
max-pool by 0 (``resnet_video.py``: 112 -> 55 px); that is an architecture setting, carried by the
registry tags of their checkpoints (``stem_pool_padding=0``), while PySlowFast runs its Caffe2 checkpoint
in its own PyTorch net (padding 1), the architecture default.

Frozen-BN ("affine") nets (video-nonlocal-net's 32x4 and 128x1 I3D models, ``MODEL.USE_AFFINE``) replace
every BN by ``AffineNd``: ``y = s * x + b`` with only ``_bn_s`` / ``_bn_b`` stored. A BatchNorm with running
mean 0 and running variance ``1 - eps`` computes exactly that, so such a file converts into the usual
architecture; the statistics are derived only when the file has none at all (a file missing some is refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import BRANCH_CONV, SourceFormat, stage_layer

BN_EPS = 1e-5  # torch.nn.BatchNorm3d's default, which every BN of nlzoo's ResNet3d uses

_BN = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}
_PARAM = {"w": "weight", "b": "bias"}
_STATISTICS = re.compile(r".*\.running_(mean|var)")
_BN_WEIGHT = re.compile(r"((?:.*\.)?bn\d|.*\.downsample\.1|.*_nonlocal\.norm)\.weight")


def affine_statistics(mapped: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """BN statistics for a frozen-BN file (AffineNd layers), so BN in eval computes ``s * x + b`` exactly."""
    if any(_STATISTICS.fullmatch(k) for k in mapped):
        return {}, ""
    derived: dict[str, Any] = {}
    for key, value in mapped.items():
        match = _BN_WEIGHT.fullmatch(key)
        if match:
            channels = int(np.shape(value)[0])
            derived[f"{match[1]}.running_mean"] = np.zeros(channels, dtype=np.float32)
            derived[f"{match[1]}.running_var"] = np.full(channels, 1.0 - BN_EPS, dtype=np.float32)
    why = "frozen-BN (AffineNd) checkpoint: BN statistics set to mean 0, variance 1 - eps, so BN = s * x + b"
    return derived, why if derived else ""


CAFFE2 = SourceFormat(
    name="caffe2",
    description="the authors' Caffe2 .pkl (video-nonlocal-net, PySlowFast model zoo)",
    container="pickle",
    weights_key="blobs",
    signature=r"conv1_w|res_conv1_bn_s|pred_w",
    rules=(
        (r"conv1_w", lambda m: "conv1.weight"),
        (r"res_conv1_bn_(s|b|rm|riv)", lambda m: f"bn1.{_BN[m[1]]}"),
        (r"res([2-5])_(\d+)_branch2([abc])_w", lambda m: f"{stage_layer(m[1])}.{m[2]}.conv{BRANCH_CONV[m[3]]}.weight"),
        (
            r"res([2-5])_(\d+)_branch2([abc])_bn_(s|b|rm|riv)",
            lambda m: f"{stage_layer(m[1])}.{m[2]}.bn{BRANCH_CONV[m[3]]}.{_BN[m[4]]}",
        ),
        (r"res([2-5])_(\d+)_branch1_w", lambda m: f"{stage_layer(m[1])}.{m[2]}.downsample.0.weight"),
        (r"res([2-5])_(\d+)_branch1_bn_(s|b|rm|riv)", lambda m: f"{stage_layer(m[1])}.{m[2]}.downsample.1.{_BN[m[3]]}"),
        (
            r"nonlocal_conv([2-5])_(\d+)_(theta|phi|g|out)_(w|b)",
            lambda m: f"{stage_layer(m[1])}.{m[2]}_nonlocal.conv_{m[3]}.{_PARAM[m[4]]}",
        ),
        (
            r"nonlocal_conv([2-5])_(\d+)_bn_(s|b|rm|riv)",
            lambda m: f"{stage_layer(m[1])}.{m[2]}_nonlocal.norm.{_BN[m[3]]}",
        ),
        (r"pred_(w|b)", lambda m: f"fc.{_PARAM[m[1]]}"),
    ),
    ignore=(r".*_momentum", r"lr", r"model_iter"),
    zero_fill=("*.num_batches_tracked",),
    default_instantiation="embedded_gaussian",
    derive=affine_statistics,
)
