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

mmengine checkpoints also carry ``meta`` with the run's config as text (``meta["cfg"]``, Python syntax). It
is parsed with :mod:`ast` (never executed) for the backbone's ``non_local_cfg`` (``mode``, ``use_scale``,
``sub_sample``), ``depth`` and ``pretrained``/``pretrained2d``; those fields then decide the conversion and are
recorded.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from ..config import IMAGENET_MEAN, IMAGENET_STD
from .base import BN_ENTRY, SourceFormat

_BLOCK = r"backbone\.layer([1-4])\.(\d+)"
_NL = r"backbone\.layer[1-4]\.\d+\.non_local_block\."


_MODES = ("embedded_gaussian", "dot_product", "gaussian", "concatenation")
_META_FIELDS = ("mode", "use_scale", "sub_sample")


def nonlocal_settings(payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Subsampling as the keys show it, then the pairwise function and scale the ``meta`` config records."""
    weights = payload.get("state_dict") if isinstance(payload, Mapping) else None
    keys = list(weights) if isinstance(weights, Mapping) else []
    args: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    if any(re.match(_NL + r"g\.0\.conv\.", k) for k in keys):
        args, evidence["keys"] = {"subsample": True, "pool_embeddings": True}, "g.0.conv (pooled after the conv)"
    elif any(re.match(_NL + r"g\.conv\.", k) for k in keys):
        args, evidence["keys"] = {"subsample": False}, "g.conv (no pooling)"
    meta = read_meta_config(payload)
    evidence.update({f"meta.cfg {k}": v for k, v in meta.items()})
    mode = meta.get("non_local_cfg.mode")
    if mode in _MODES:
        args["instantiation"] = mode
        if mode == "embedded_gaussian" and isinstance(meta.get("non_local_cfg.use_scale"), bool):
            args["softmax_scale"] = None if meta["non_local_cfg.use_scale"] else 1.0
    return args, evidence


def read_meta_config(payload: Any) -> dict[str, Any]:
    """Backbone settings from an mmengine checkpoint's ``meta`` config text, read with :mod:`ast` (no code runs).

    Returns:
        ``{"non_local_cfg.mode": ..., "non_local_cfg.use_scale": ..., "depth": ..., ...}`` for the fields present.
    """
    meta = payload.get("meta") if isinstance(payload, Mapping) else None
    text = next(
        (meta.get(k) for k in ("cfg", "config") if isinstance(meta, Mapping) and isinstance(meta.get(k), str)), None
    )
    if text is None:
        return {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        for key, value in _items(node):
            if key == "non_local_cfg":
                found.update({f"non_local_cfg.{k}": v for k, v in _literal_items(value) if k in _META_FIELDS})
            elif key in ("depth", "pretrained", "pretrained2d") and key not in found:
                literal = _literal(value)
                if literal is not _NOT_LITERAL:
                    found[key] = literal
    return found


_NOT_LITERAL = object()


def _items(node: ast.AST) -> list[tuple[str, ast.AST]]:
    """``key=value`` pairs of a ``dict(...)`` call or ``{...}`` literal."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return [(kw.arg, kw.value) for kw in node.keywords if kw.arg is not None]
    if isinstance(node, ast.Dict):
        return [
            (k.value, v)
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and isinstance(k.value, str)
        ]
    return []


def _literal_items(node: ast.AST) -> list[tuple[str, Any]]:
    return [(k, v) for k, value in _items(node) if (v := _literal(value)) is not _NOT_LITERAL]


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


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
    nonlocal_choices={
        # mmcv's embedded Gaussian divides by sqrt(inner channels) only with use_scale=True.
        "mode='embedded_gaussian', use_scale=False (its I3D-NL configs)": {
            "instantiation": "embedded_gaussian",
            "softmax_scale": 1.0,
        },
        "mode='embedded_gaussian', use_scale=True": {"instantiation": "embedded_gaussian", "softmax_scale": None},
        "mode='dot_product'": {"instantiation": "dot_product"},
    },
    data_config={"mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    read_settings=nonlocal_settings,
)
