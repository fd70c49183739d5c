"""Published Kinetics-400 checkpoints of the C2D / I3D ResNet-50s, as registry tags (status "convertible").

nlzoo hosts no copy: each tag names the origin file, its format, license and the accuracy its authors
report (anchors-arch.md sections 1e, 1f, 5), plus the architecture and data settings the weights need.
``nlzoo convert --source FORMAT --model ARCH.TAG FILE DIR`` turns the file into a folder.

Class order: every source indexes Kinetics-400 classes alphabetically, the list torchvision ships for its
Kinetics weights (identical to deepmind/kinetics-i3d data/label_map.txt, and to video-nonlocal-net's
process_data/kinetics/classids.json).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..config import IMAGENET_MEAN, IMAGENET_STD, PretrainedTag

_VNL = "https://dl.fbaipublicfiles.com/video-nonlocal"
_MMACTION2 = "https://download.openmmlab.com/mmaction/v1.0/recognition/i3d"
_PYTORCHVIDEO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"

_FRAMES_32X2 = {"num_frames": 32, "sampling_rate": 2}
_MMACTION2_DATA = {**_FRAMES_32X2, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
# mmaction2's ResNet3d stem: conv1 strides 2 in time, the (1,3,3) max-pool keeps every other frame.
_MMACTION2_STEM = {"stem_temporal_stride": 2, "stem_pool_temporal_kernel": 1}
# The authors' Caffe2 nets (video-nonlocal-net resnet_video.py / resnet_video_org.py): unpadded stem pool.
_VNL_8X8 = {"stem_pool_padding": 0}
_VNL_32X2 = {"stem_pool_padding": 0, "stem_temporal_stride": 2}

_ROUND_TRIP = (
    "key layout only: a checkpoint written in the documented {fmt} layout from a randomly initialised nlzoo "
    "model converts back exactly, every key and reshape (tests/zoo/converters); the published file itself "
    "was not available to test"
)
_MMCV_ORDER = "; the converted blocks match a reference of mmcv's NonLocal3d formula (pooling after phi/g)"
_PARITY = (
    "key layout and logits: pytorchvideo's own {arch} (random weights and BN statistics) saved as its hub "
    "saves it converts to an nlzoo model with the same eval-mode logits (tests/zoo/converters)"
)


@cache
def kinetics400_labels() -> tuple[str, ...]:
    """The 400 Kinetics class names in index order (from torchvision's Kinetics-400 weights metadata)."""
    from torchvision.models.video import R3D_18_Weights

    return tuple(R3D_18_Weights.KINETICS400_V1.meta["categories"])


def _kinetics(tag: str, **fields: Any) -> PretrainedTag:
    fields.setdefault("label_names", kinetics400_labels())
    return PretrainedTag(tag=tag, dataset="Kinetics-400", num_classes=400, status="convertible", **fields)


def _vnl(tag: str, file: str, top1: float, top5: float, frames: str) -> PretrainedTag:
    return _kinetics(
        tag,
        origin_url=f"{_VNL}/{file}",
        origin_format="caffe2",
        license="cc-by-nc-4.0",
        metrics={"top1": top1, "top5": top5},
        model_args=_VNL_32X2 if frames == "32x2" else _VNL_8X8,
        data_config=_FRAMES_32X2 if frames == "32x2" else {},
        verified=_ROUND_TRIP.format(fmt="Caffe2"),
        notes=f"The authors' video-nonlocal-net {frames} model (README), ImageNet-initialised, 400k iterations; "
        "reported on Kinetics-400 val with 10 clips x 3 crops of 256x256, fully convolutional.",
    )


def _vnl_affine(
    tag: str, file: str, top1: float, top5: float, frames: int, rate: int, nonlocal_: bool
) -> PretrainedTag:
    """The authors' long-clip I3D nets (``run_i3d_*_affine_400k*.sh``): frozen BN stored as AffineNd layers,
    ``resnet_video.py`` strides (res3-res5 see frames / 2), non-local blocks without a norm
    (NONLOCAL.USE_BN False, zero-initialised ``conv_out``) that attend within groups of 4 frames in res3
    (``res_stage_nonlocal_group``, group_size 4) and over all frames in res4."""
    args: dict[str, Any] = dict(_VNL_8X8)
    if nonlocal_:
        args["nonlocal_args"] = {"norm": "none"}
        args["nonlocal_stage_args"] = {"layer2": {"temporal_groups": frames // 2 // 4}}
    return _kinetics(
        tag,
        origin_url=f"{_VNL}/{file}",
        origin_format="caffe2",
        license="cc-by-nc-4.0",
        metrics={"top1": top1, "top5": top5},
        model_args=args,
        data_config={"num_frames": frames, "sampling_rate": rate},
        verified=_ROUND_TRIP.format(fmt="Caffe2")
        + "; AffineNd layers convert into BNs with mean 0, variance 1 - eps that compute s * x + b",
        notes=f"The authors' video-nonlocal-net {frames}x{rate} I3D model (README), initialised from their "
        "Kinetics I3D baseline with BN frozen (affine), 400k iterations; reported on Kinetics-400 val with 10 "
        "clips x 3 crops of 256x256. Fine-tune it with BN frozen, as it was trained."
        + (
            f" Res3's non-local blocks attend within {frames // 8} groups of 4 frames (for {frames}-frame clips)."
            if nonlocal_
            else ""
        ),
    )


def _mmaction2(tag: str, stem: str, top1: float, top5: float, nonlocal_args: dict[str, Any] | None) -> PretrainedTag:
    args: dict[str, Any] = dict(_MMACTION2_STEM)
    if nonlocal_args is not None:
        args["nonlocal_args"] = {**nonlocal_args, "pool_embeddings": True}
    return _kinetics(
        tag,
        origin_url=f"{_MMACTION2}/{stem.split('_2022')[0]}/{stem}.pth",
        origin_format="mmaction2",
        license="apache-2.0",
        metrics={"top1": top1, "top5": top5},
        model_args=args,
        data_config=_MMACTION2_DATA,
        verified=_ROUND_TRIP.format(fmt="mmaction2") + (_MMCV_ORDER if nonlocal_args else ""),
        notes="mmaction2 I3D 32x2x1 (configs/recognition/i3d), ImageNet-initialised, 100 epochs; reported with "
        "10 clips x 3 crops. License: that of the mmaction2 repository (no separate terms for the weights).",
    )


def _pytorchvideo(arch: str, file: str, top1: float, top5: float) -> PretrainedTag:
    return _kinetics(
        "kinetics400",
        origin_url=f"{_PYTORCHVIDEO}/{file}",
        origin_format="pytorchvideo",
        license="apache-2.0",
        metrics={"top1": top1, "top5": top5},
        verified=_PARITY.format(arch=arch),
        notes="pytorchvideo hub model (8x8, no non-local blocks), models/hub/resnet.py and docs model_zoo.md.",
    )


_I3D_NL_MM = "i3d_imagenet-pretrained-r50-nl-{}_8xb8-32x2x1-100e_kinetics400-rgb_{}"

KINETICS_TAGS: dict[str, tuple[PretrainedTag, ...]] = {
    "i3d_r50_nl": (
        _kinetics(
            "kinetics400",
            origin_url="https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/kinetics400/I3D_NLN_8x8_R50.pkl",
            origin_format="caffe2",
            license="apache-2.0",
            metrics={"top1": 74.0, "top5": 91.1},
            verified=_ROUND_TRIP.format(fmt="Caffe2"),
            notes="PySlowFast model zoo I3D NLN R50 8x8 (config Kinetics/c2/I3D_NLN_8x8_R50, CHECKPOINT_TYPE "
            "caffe2), reported with 10 clips x 3 crops and run by PySlowFast in its own net, nlzoo's default "
            "architecture. License: that of the PySlowFast repository.",
        ),
        _vnl("kinetics400_vnl8x8", "i3d_nonlocal_8x8_IN_pretrain_400k.pkl", 74.7, 91.6, "8x8"),
        _vnl("kinetics400_vnl32x2", "i3d_nonlocal_32x2_IN_pretrain_400k.pkl", 74.9, 91.6, "32x2"),
        _vnl_affine("kinetics400_vnl32x4_affine", "i3d_nonlocal_32x4_I3D_pretrain_400k.pkl", 76.5, 92.6, 32, 4, True),
        _vnl_affine(
            "kinetics400_vnl128x1_affine", "i3d_nonlocal_128x1_I3D_pretrain_400k.pkl", 76.5, 92.7, 128, 1, True
        ),
        _mmaction2(
            "kinetics400_mmaction2_dot",
            _I3D_NL_MM.format("dot-product", "20220812-8e1f2148"),
            74.80,
            92.07,
            {"instantiation": "dot_product"},
        ),
        _mmaction2(
            "kinetics400_mmaction2_embedded",
            _I3D_NL_MM.format("embedded-gaussian", "20220812-afd8f562"),
            74.73,
            91.80,
            {"instantiation": "embedded_gaussian", "softmax_scale": 1.0},
        ),
        _mmaction2(
            "kinetics400_mmaction2_gaussian",
            _I3D_NL_MM.format("gaussian", "20220812-0c5cbf5a"),
            73.97,
            91.33,
            {"instantiation": "gaussian"},
        ),
    ),
    "i3d_r50": (
        _pytorchvideo("i3d_r50", "I3D_8x8_R50.pyth", 73.27, 90.70),
        _vnl("kinetics400_vnl8x8", "i3d_baseline_8x8_IN_pretrain_400k.pkl", 73.4, 90.9, "8x8"),
        _vnl("kinetics400_vnl32x2", "i3d_baseline_32x2_IN_pretrain_400k.pkl", 73.6, 90.8, "32x2"),
        _vnl_affine("kinetics400_vnl32x4_affine", "i3d_baseline_32x4_I3D_pretrain_400k.pkl", 75.5, 92.0, 32, 4, False),
        _vnl_affine(
            "kinetics400_vnl128x1_affine", "i3d_baseline_128x1_I3D_pretrain_400k.pkl", 75.2, 92.0, 128, 1, False
        ),
        _mmaction2(
            "kinetics400_mmaction2",
            "i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb_20220812-e213c223",
            73.47,
            91.27,
            None,
        ),
    ),
    "c2d_r50_nl": (
        _vnl("kinetics400_vnl8x8", "c2d_nonlocal_8x8_IN_pretrain_400k.pkl", 74.4, 91.4, "8x8"),
        _vnl("kinetics400_vnl32x2", "c2d_nonlocal_32x2_IN_pretrain_400k.pkl", 73.9, 91.0, "32x2"),
    ),
    "c2d_r50": (
        _pytorchvideo("c2d_r50", "C2D_8x8_R50.pyth", 71.46, 89.68),
        _vnl("kinetics400_vnl8x8", "c2d_baseline_8x8_IN_pretrain_400k.pkl", 71.9, 90.0, "8x8"),
        _vnl("kinetics400_vnl32x2", "c2d_baseline_32x2_IN_pretrain_400k.pkl", 72.0, 90.0, "32x2"),
    ),
}
