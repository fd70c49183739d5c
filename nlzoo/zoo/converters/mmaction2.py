"""mmaction2 ``.pth`` checkpoints of its ResNet3d recognisers (I3D, I3D-NL).

Container: ``{"state_dict": ..., "meta": ...}`` (mmengine). Keys (``mmaction/models/backbones/resnet3d.py``
with mmcv ``ConvModule`` and ``NonLocal3d``): ``backbone.conv1.{conv,bn}``,
``backbone.layer{k}.{i}.conv{1,2,3}.{conv,bn}``, ``backbone.layer{k}.0.downsample.{conv,bn}``,
``backbone.layer{k}.{i}.non_local_block.{theta.conv, phi.0.conv, g.0.conv, conv_out.conv, conv_out.bn}``
and ``cls_head.fc_cls``.

What differs from the authors' nets, and is therefore set here:

* the stem: mmaction2's ResNet3d defaults ``conv1_stride_t=2``, ``pool1_stride_t=2`` with a (1,3,3) pool
  kernel, i.e. conv1 strides 2 in time and the pool keeps every other frame
  (``stem_temporal_stride=2, stem_pool_temporal_kernel=1``);
* the NL block (mmcv ``_NonLocalNd``): with ``sub_sample`` it max-pools the *outputs* of phi and g
  (``g = Sequential(conv, pool)``, hence the ``.0.`` in the keys) -> ``pool_embeddings=True``; without it
  the keys read ``g.conv`` -> ``subsample=False``. ``conv_out`` has no bias (a ConvModule with a norm),
  so nlzoo's is filled with zeros, which is exact;
* the pairwise function is not in the keys (dot product and embedded Gaussian look alike), nor is mmcv's
  ``use_scale``; the I3D-NL configs use ``use_scale=False`` (``softmax_scale=1.0``). Registry tags carry
  both; otherwise the user must give them;
* inputs are normalised with ImageNet mean/std.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..config import IMAGENET_MEAN, IMAGENET_STD
from .base import BN_ENTRY, SourceFormat

_BLOCK = r"backbone\.layer([1-4])\.(\d+)"
_NL = r"backbone\.layer[1-4]\.\d+\.non_local_block\."


def nonlocal_settings_from_keys(payload: Any) -> dict[str, Any]:
    """Subsampling as the keys show it: ``g.0.conv`` (pooled after the conv) or ``g.conv`` (no pooling)."""
    weights = payload.get("state_dict") if isinstance(payload, Mapping) else None
    keys = list(weights) if isinstance(weights, Mapping) else []
    if any(re.match(_NL + r"g\.0\.conv\.", k) for k in keys):
        return {"subsample": True, "pool_embeddings": True}
    if any(re.match(_NL + r"g\.conv\.", k) for k in keys):
        return {"subsample": False}
    return {}


MMACTION2 = SourceFormat(
    name="mmaction2",
    description="an mmaction2 .pth (weights under 'state_dict', keys 'backbone.layerK...')",
    container="torch",
    weights_key="state_dict",
    signature=r"backbone\.conv1\.conv\.weight",
    rules=(
        (r"backbone\.conv1\.conv\.weight", lambda m: "conv1.weight"),
        (rf"backbone\.conv1\.bn\.{BN_ENTRY}", lambda m: f"bn1.{m[1]}"),
        (rf"{_BLOCK}\.conv([123])\.conv\.weight", lambda m: f"layer{m[1]}.{m[2]}.conv{m[3]}.weight"),
        (rf"{_BLOCK}\.conv([123])\.bn\.{BN_ENTRY}", lambda m: f"layer{m[1]}.{m[2]}.bn{m[3]}.{m[4]}"),
        (rf"{_BLOCK}\.downsample\.conv\.weight", lambda m: f"layer{m[1]}.{m[2]}.downsample.0.weight"),
        (rf"{_BLOCK}\.downsample\.bn\.{BN_ENTRY}", lambda m: f"layer{m[1]}.{m[2]}.downsample.1.{m[3]}"),
        (
            rf"{_BLOCK}\.non_local_block\.(theta|phi|g)(?:\.0)?\.conv\.(weight|bias)",
            lambda m: f"layer{m[1]}.{m[2]}_nonlocal.conv_{m[3]}.{m[4]}",
        ),
        (
            rf"{_BLOCK}\.non_local_block\.conv_out\.conv\.weight",
            lambda m: f"layer{m[1]}.{m[2]}_nonlocal.conv_out.weight",
        ),
        (rf"{_BLOCK}\.non_local_block\.conv_out\.bn\.{BN_ENTRY}", lambda m: f"layer{m[1]}.{m[2]}_nonlocal.norm.{m[3]}"),
        (
            rf"{_BLOCK}\.non_local_block\.concat_project\.conv\.weight",
            lambda m: f"layer{m[1]}.{m[2]}_nonlocal.pairwise.weight",
        ),
        (r"cls_head\.fc_cls\.(weight|bias)", lambda m: f"fc.{m[1]}"),
    ),
    zero_fill=("*_nonlocal.conv_out.bias", "*.num_batches_tracked"),
    model_args={"stem_temporal_stride": 2, "stem_pool_temporal_kernel": 1},
    default_instantiation=None,
    softmax_scale_required=True,
    data_config={"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    read_settings=nonlocal_settings_from_keys,
)
