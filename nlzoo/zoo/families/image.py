"""Registry entries for image classification: timm ResNet-family backbones with 2D non-local blocks.

Each architecture comes plain (``resnet50``, for comparisons) and with blocks, placed like the paper's
video models (nlzoo's ResNet-3D and PySlowFast; 0-indexed residual blocks, a block goes *after* the one named):

* ``<arch>_nl``: after res4 blocks {1, 3, 5}, i.e. timm's ``layer3.1``, ``layer3.3``, ``layer3.5`` (3 blocks;
  ResNet-18 has two res4 blocks and gets ``layer3.1`` only);
* ``<arch>_nl_l2l3``: res3 blocks {1, 3} as well, i.e. ``layer2.1``, ``layer2.3`` + the above (5 blocks;
  ResNet-18: ``layer2.1``, ``layer3.1``).

Every tag is one of timm's ImageNet-1k checkpoints of the *base* network, downloaded from the Hugging Face
Hub (``timm/<arch>.<tag>``) when asked for; the non-local blocks are not in it and start as identities
(zero-initialised norm), so a ``_nl`` model with these weights predicts exactly what timm's network does
until it is fine-tuned. Data configs come from timm (``resolve_data_config``); reported accuracies are
timm's published numbers for the base network.

``timm_nonlocal`` builds *any* timm architecture with blocks after named submodules; use it through
``nlzoo.load("timm:<arch>[.<tag>]", nonlocal_after=[...])``, which also takes timm's data config and weights.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from torch import nn

from ...errors import UnknownArgumentError, WeightsError
from ...models.resnet3d import nonlocal_positions
from ...models.timm_nl import create_timm_nonlocal
from ..config import DataConfig, PretrainedTag
from ..registry import build_model, register_model, register_variant
from .sources import TimmWeights

TIMM_ENTRY = "timm_nonlocal"
RESULTS_CSV = "huggingface/pytorch-image-models@aa4b585:results/results-imagenet.csv"

# timm architecture -> (depth for the block placement, timm tags (first = default, as timm's), title)
_ARCHS: dict[str, tuple[int, tuple[str, ...], str]] = {
    "resnet18": (18, ("a1_in1k", "tv_in1k"), "ResNet-18"),
    "resnet34": (34, ("a1_in1k", "tv_in1k"), "ResNet-34"),
    "resnet50": (50, ("a1_in1k", "tv_in1k"), "ResNet-50"),
    "resnet101": (101, ("a1h_in1k", "tv_in1k"), "ResNet-101"),
    "resnext50_32x4d": (50, ("a1h_in1k", "tv_in1k"), "ResNeXt-50 32x4d"),
    "seresnet50": (50, ("a1_in1k", "ra2_in1k"), "SE-ResNet-50"),
}

# ImageNet-1k val (top-1, top-5) published by timm for the base network at the weights' own data config
# (224 px, their crop_pct and interpolation): the rows of RESULTS_CSV with img_size 224.
_REPORTED: dict[str, tuple[float, float]] = {
    "resnet18.a1_in1k": (71.504, 90.086),
    "resnet18.tv_in1k": (69.752, 89.082),
    "resnet34.a1_in1k": (76.420, 92.896),
    "resnet34.tv_in1k": (73.298, 91.422),
    "resnet50.a1_in1k": (80.382, 94.598),
    "resnet50.tv_in1k": (76.156, 92.866),
    "resnet101.a1h_in1k": (81.950, 95.760),
    "resnet101.tv_in1k": (77.404, 93.552),
    "resnext50_32x4d.a1h_in1k": (81.140, 95.320),
    "resnext50_32x4d.tv_in1k": (77.632, 93.674),
    "seresnet50.a1_in1k": (80.012, 94.704),
    "seresnet50.ra2_in1k": (80.260, 95.068),
}

_PLACEMENTS = ("none", "nl", "nl_l2l3")
_VERIFIED = (
    "offline, by nlzoo's tests with random timm weights standing in for the download (ResNet-18 and the generic "
    "timm path): keys load strictly, the new blocks keep their identity init and logits equal timm's network; "
    "data configs match timm's resolve_model_data_config. This checkpoint was not downloaded or evaluated by nlzoo"
)


def placement(depth: int, kind: str) -> tuple[str, ...]:
    """Block positions of ``kind`` (``"none"``, ``"nl"``: res4 only, ``"nl_l2l3"``: res3 + res4) for a depth."""
    if kind not in _PLACEMENTS:
        raise ValueError(f"placement must be one of {_PLACEMENTS}; got {kind!r}")
    both = nonlocal_positions(depth, "nl") if kind != "none" else ()
    return both if kind == "nl_l2l3" else tuple(p for p in both if p.startswith("layer3."))


@functools.cache
def timm_tag(timm_name: str, *, with_nonlocal: bool = True) -> PretrainedTag:
    """The tag for timm's checkpoint ``arch.tag``: source, data config, classes and licence read from timm.

    Reported metrics are attached for the checkpoints listed from timm's results table.

    Raises:
        KeyError: timm has no such architecture or tag.
        ValueError: the weights are not hosted in the Hub's ``timm`` organisation.
    """
    source = TimmWeights(timm_name)
    cfg = source.pretrained_cfg()
    if cfg.hf_hub_id != f"timm/{timm_name}":
        raise WeightsError(
            f"timm's weights {timm_name!r} are not in the Hub's timm organisation (hf_hub_id={cfg.hf_hub_id!r}, "
            f"url={cfg.url!r}); build the model with timm.create_model(..., pretrained=True) and pass the module"
        )
    reported = _REPORTED.get(timm_name)
    label_names = source.label_names()
    blocks = (
        " The non-local blocks are not in these weights: they start as identities, so the model predicts "
        "exactly what the base network does until it is fine-tuned."
        if with_nonlocal
        else ""
    )
    where = f" ({RESULTS_CSV}, {cfg.input_size[-1]} px)." if reported else " nlzoo records no accuracy for it."
    return PretrainedTag(
        tag=cfg.tag,
        dataset="ImageNet-1k" if label_names and len(label_names) == 1000 else f"see {cfg.origin_url or 'timm'}",
        num_classes=cfg.num_classes,
        status="available",
        source=source,
        label_names=label_names,
        data_config={k: v for k, v in dataclasses.asdict(source.data_config()).items() if v is not None},
        partial=("*_nonlocal.*",),
        metrics={"top1": reported[0], "top5": reported[1]} if reported else {},
        origin_url=f"https://huggingface.co/{cfg.hf_hub_id}",
        license=cfg.license,
        verified=_VERIFIED,
        notes=f"timm's weights for the base network {timm_name}; any accuracy is timm's for that network"
        f"{where}{blocks}" + (f" Paper: {cfg.paper_ids}." if cfg.paper_ids else ""),
    )


def _make_entry(arch: str, kind: str, block: str = "nonlocal") -> None:
    depth, tags, title = _ARCHS[arch]
    name = arch if kind == "none" else f"{arch}_{kind}" if block == "nonlocal" else f"{arch}_{block}"
    after = placement(depth, kind)
    arch_args: dict[str, Any] = {"timm_name": arch, "nonlocal_after": after}
    if block != "nonlocal":
        arch_args["nonlocal_args"] = {"block": block}

    blocks = "non-local" if block == "nonlocal" else f"{block!r} (nlzoo.layers preset)"
    what = f"with {len(after)} {blocks} blocks" if after else "as in timm"
    tag_list = [timm_tag(f"{arch}.{t}", with_nonlocal=bool(after)) for t in tags]
    globals()[name] = register_variant(
        name,
        create_timm_nonlocal,
        arch_args,
        doc=f"timm's {title} {what}, ImageNet-1k weights from timm.\n\n"
        f"Non-local blocks after: {', '.join(after) or 'none'}. Arguments: NonLocalBlock settings as "
        "nonlocal_args={...}, placement as nonlocal_after=[...], anything else goes to timm.create_model.",
        module=__name__,
        task="image-classification",
        data_config=DataConfig(**tag_list[0].data_config),
        tags=tag_list,
    )


for _arch in _ARCHS:
    for _kind in _PLACEMENTS:
        _make_entry(_arch, _kind)
# GCNet's block (nlzoo.layers preset "gc") at the ``_nl`` positions (res4 blocks 1, 3, 5).
for _arch in ("resnet18", "resnet50"):
    _make_entry(_arch, "nl", block="gc")


@register_model(task="image-classification", data_config=DataConfig(), classifier=None)
def timm_nonlocal(*, timm_name: str | None = None, **model_args: Any) -> nn.Module:
    """Any timm architecture with non-local blocks after named submodules (``timm_name`` + ``nonlocal_after``).

    Prefer ``nlzoo.load("timm:<arch>[.<tag>]", nonlocal_after=[...])``: it also sets timm's data config for
    the architecture and loads timm's weights. Loading by this name directly keeps the ImageNet defaults
    (224 px, bilinear). Saved models re-create themselves through it.
    """
    if timm_name is None:
        raise UnknownArgumentError(
            "timm_nonlocal needs timm_name=...; e.g. nlzoo.load('timm:convnext_tiny', nonlocal_after=['stages.2'])"
        )
    return build_model(TIMM_ENTRY, create_timm_nonlocal, {"timm_name": timm_name}, model_args)
