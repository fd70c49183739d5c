"""Registry entries for torchvision's Kinetics-400 video networks, plain and with non-local blocks.

``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action
Recognition", CVPR 2018) and ``s3d`` (Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018) are
torchvision's networks; the ``_nl`` variants add non-local blocks (2 after layer2.1 / layer3.1 of the ResNets,
3 after S3D's Mixed_3c / 4c / 4e; see :mod:`nlzoo.models.torchvision_video`). Each has a ``kinetics400`` tag:
torchvision's weights, downloaded through torchvision's weights API only when asked for. Non-local blocks start
as identities, so an ``_nl`` model with these weights predicts exactly what torchvision's network does.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...models.torchvision_video import (
    S3D_NONLOCAL,
    VIDEO_RESNET_NONLOCAL,
    TorchvisionS3D,
    TorchvisionVideoResNet,
)
from ..config import PretrainedTag
from ..registry import register_variant
from .sources import TorchvisionWeights

_LICENSE = "bsd-3-clause (torchvision); Kinetics-400 terms may apply"

# name -> (torchvision weights, model class, arch args, classifier, description)
_ARCHS: dict[str, tuple[str, type[nn.Module], dict[str, Any], str, str]] = {
    "r3d_18": ("R3D_18_Weights.KINETICS400_V1", TorchvisionVideoResNet, {"arch": "r3d_18"}, "fc", "R3D-18"),
    "mc3_18": ("MC3_18_Weights.KINETICS400_V1", TorchvisionVideoResNet, {"arch": "mc3_18"}, "fc", "MC3-18"),
    "r2plus1d_18": (
        "R2Plus1D_18_Weights.KINETICS400_V1",
        TorchvisionVideoResNet,
        {"arch": "r2plus1d_18"},
        "fc",
        "R(2+1)D-18",
    ),
    "s3d": ("S3D_Weights.KINETICS400_V1", TorchvisionS3D, {}, "classifier.1", "S3D"),
}
_NONLOCAL = {TorchvisionVideoResNet: VIDEO_RESNET_NONLOCAL, TorchvisionS3D: S3D_NONLOCAL}


def _kinetics_tag(source: TorchvisionWeights, with_nonlocal: bool) -> PretrainedTag:
    weights = source.entry()
    meta = weights.meta
    blocks = (
        " The non-local blocks are not in these weights: they start as identities (same predictions as the "
        "plain network) and are learnt by fine-tuning."
        if with_nonlocal
        else ""
    )
    return PretrainedTag(
        tag="kinetics400",
        dataset="Kinetics-400",
        num_classes=len(meta["categories"]),
        status="available",
        source=source,
        label_names=source.label_names(),
        partial=("*_nonlocal.*",),
        metrics=source.metrics(),
        origin_url=weights.url,
        license=_LICENSE,
        verified="offline, with a random torchvision state dict standing in for the download: keys load "
        "strictly, logits equal torchvision's network, label names and data config come from the weights' "
        "meta; the real checkpoint was not downloaded or evaluated by nlzoo",
        recipe=meta["recipe"],
        notes=f"Accuracy reported by torchvision for its network ({meta['_docs']}){blocks} torchvision resizes "
        "frames to a fixed H x W before cropping; nlzoo states that resize as its short side. "
        "torchvision: pre-trained weights may carry terms derived from their training data.",
    )


def _make_entry(name: str, with_nonlocal: bool) -> None:
    weights, cls, base_args, classifier, title = _ARCHS[name]
    source = TorchvisionWeights(name, weights)
    full_name = f"{name}_nl" if with_nonlocal else name
    placement = _NONLOCAL[cls] if with_nonlocal else ()
    arch = {**base_args, "nonlocal_after": placement}

    what = f"with {len(placement)} non-local blocks" if with_nonlocal else "as in torchvision"
    globals()[full_name] = register_variant(
        full_name,
        cls,
        arch,
        doc=f"torchvision's {title} {what}, Kinetics-400 weights from torchvision.\n\n"
        f"Non-local blocks after: {', '.join(placement) or 'none'} (every other block of the middle stages).",
        module=__name__,
        task="video-classification",
        data_config=source.data_config(),
        tags=[_kinetics_tag(source, with_nonlocal)],
        classifier=classifier,
    )


for _name in _ARCHS:
    for _with_nonlocal in (False, True):
        _make_entry(_name, _with_nonlocal)
