"""torchvision's R-CNN detectors (Faster, Mask, Keypoint R-CNN, ResNet-FPN) with the paper's non-local blocks.

Section 6 of the paper ("Extension: Experiments on COCO") adds to Mask R-CNN *one* non-local block right
before the last residual block of res4 (Table 5: +1.0 box AP, +0.9 mask AP for R50-FPN) and, for keypoints,
four non-local blocks in the keypoint head, one after every two of its eight 3x3 convs (Table 6). This module
does not write a detector: it builds torchvision's (``FasterRCNN`` / ``MaskRCNN`` / ``KeypointRCNN`` over
``resnet_fpn_backbone``) and places :class:`~nlzoo.layers.NonLocalBlock` s with
:func:`~nlzoo.layers.insert_nonlocal`. The detector's modules are adopted under torchvision's own attribute
names, so state-dict keys are torchvision's (a torchvision COCO checkpoint loads by key) plus the blocks'
``*_nonlocal.*``.

Backbone norm: ``FrozenBatchNorm2d`` (fixed ImageNet statistics and affine), as torchvision and Detectron
train these models with 2 images per GPU; ``trainable_backbone_layers=3`` (res3-res5 train) as theirs.
A backbone trained from scratch (no ImageNet weights: the CPU recipe) needs ``backbone_norm="batch"``,
torchvision's choice there: frozen statistics of an untrained network normalise nothing.

GCNet (Cao et al., ICCVW 2019) as mmdetection configures it
(``configs/gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py``: mmcv ``ContextBlock``, ratio 1/4,
``pooling_type='att'``, ``fusion_types=('channel_add',)``, plugin position ``after_conv3`` in every bottleneck
of res3-res5) is ``nonlocal_block="gc"`` with :func:`gc_positions`: the block
goes *inside* each residual block, after ``bn3`` and before the identity is added. It is registered beside
``bn3`` as ``bn3_nonlocal`` and applied to ``bn3``'s output (see :func:`~nlzoo.layers.insert_nonlocal`), so
every torchvision key is unchanged and a torchvision checkpoint still loads; its last conv starts at zero, so
a new GC block is the identity.

Non-local norm: **GroupNorm** (32 groups) after ``W_z``, with gamma = 0 so a new block is the identity. With
2 images per GPU (and, in the keypoint head, RoIs of those 2 images) batch statistics are too noisy for
BatchNorm, and a frozen affine would stay at its zero gamma forever; GroupNorm is batch-independent, trains
like the rest of the network and behaves the same in training and evaluation. (Detectron's non-local code
also normalised with an affine or GN rather than BN.) ``nonlocal_args={"norm": "batch"}`` selects BN.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.ops.misc import FrozenBatchNorm2d

from ..layers import insert_nonlocal

DetectorKind = Literal["fasterrcnn", "maskrcnn", "keypointrcnn"]
BackboneNorm = Literal["frozen", "batch"]
_DETECTORS: dict[str, type[GeneralizedRCNN]] = {
    "fasterrcnn": FasterRCNN,
    "maskrcnn": MaskRCNN,
    "keypointrcnn": KeypointRCNN,
}
RESNET_LAYERS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}  # residual blocks of res2-res5
KEYPOINT_HEAD_CHANNELS = 512

# The keypoint head is Sequential(conv, ReLU) x 8: entries 3, 7, 11, 15 are the ReLUs of convs 2, 4, 6, 8.
KEYPOINT_HEAD_NONLOCAL: tuple[str, ...] = tuple(f"roi_heads.keypoint_head.{i}" for i in (3, 7, 11, 15))
DEFAULT_NONLOCAL_ARGS: Mapping[str, Any] = {"norm": "group"}

# What one forward pass runs through the RoI heads at test time (torchvision's defaults): 1000 proposals
# per image into the box head, 100 detections into the mask / keypoint heads.
FLOPS_PROPOSALS = 1000
FLOPS_DETECTIONS = 100


def res4_nonlocal(depth: int) -> str:
    """The paper's backbone placement: after the second-to-last res4 block, i.e. before the last one.

    Example:
        >>> res4_nonlocal(50)
        'backbone.body.layer3.4'
    """
    if depth not in RESNET_LAYERS:
        raise ValueError(f"depth must be one of {sorted(RESNET_LAYERS)}; got {depth!r}")
    return f"backbone.body.layer3.{RESNET_LAYERS[depth][2] - 2}"


def gc_positions(depth: int) -> tuple[str, ...]:
    """mmdetection's GCNet placement: inside every residual block of res3-res5 (``stages=(False, True, True,
    True)``), after the last conv's norm (``after_conv3``: ``bn3`` of a bottleneck; ``bn2`` of ResNet-18's
    basic blocks, which have no third conv).

    Example:
        >>> gc_positions(50)[:2], len(gc_positions(50))
        (('backbone.body.layer2.0.bn3', 'backbone.body.layer2.1.bn3'), 13)
    """
    if depth not in RESNET_LAYERS:
        raise ValueError(f"depth must be one of {sorted(RESNET_LAYERS)}; got {depth!r}")
    last_norm = "bn2" if depth == 18 else "bn3"
    return tuple(
        f"backbone.body.layer{stage}.{i}.{last_norm}"
        for stage, blocks in enumerate(RESNET_LAYERS[depth], start=1)
        if stage > 1
        for i in range(blocks)
    )


class NonLocalRCNN(GeneralizedRCNN):
    """A torchvision R-CNN on a ResNet-FPN backbone with non-local blocks.

    ::

        images ─ transform (normalise, resize short side min_size, max max_size, batch)
          ─ backbone.body (ResNet, FrozenBN; [NL before the last res4 block] or [GC after bn3 in res3-res5])
          ─ backbone.fpn
          ─ rpn ─ roi_heads: box head [+ mask head] [+ keypoint head (8 convs, [NL after convs 2, 4, 6, 8])]

    Inputs and outputs are torchvision's: a list of (3, H, W) images in [0, 1] (any sizes), plus targets
    in training; training returns the loss dict, evaluation one dict per image with ``boxes`` (x1, y1, x2,
    y2 in input pixels), ``labels``, ``scores`` and ``masks`` (N, 1, H, W) or ``keypoints`` (N, K, 3).

    Args:
        kind: ``"fasterrcnn"`` (boxes), ``"maskrcnn"`` (boxes + masks) or ``"keypointrcnn"`` (boxes + keypoints).
        depth: ResNet depth of the backbone: 50 or 101 (the paper), 18 (CPU-sized).
        num_classes: detection classes *including background* (torchvision's convention: 91 for COCO's
            category ids 1..90, 2 for person keypoints).
        num_keypoints: keypoints per instance (keypoint R-CNN only).
        nonlocal_after: dotted submodules to follow with a block (see :func:`res4_nonlocal`,
            :data:`KEYPOINT_HEAD_NONLOCAL` and, for GCNet, :func:`gc_positions`); ``()`` gives torchvision's network.
        nonlocal_block: the :mod:`nlzoo.layers.presets` member to insert: ``"nonlocal"`` (the paper's block) or
            ``"gc"`` (GCNet's context block), ...
        nonlocal_args: block arguments over the preset's (and, for ``"nonlocal"``, over
            :data:`DEFAULT_NONLOCAL_ARGS`).
        backbone_norm: ``"frozen"`` (FrozenBatchNorm2d, for ImageNet or COCO weights) or ``"batch"`` (trainable
            BatchNorm2d, for a backbone trained from scratch).
        trainable_backbone_layers: ResNet stages that train, counted from res5 (torchvision's 0..5).
        frozen_bn_eps: epsilon of the backbone's BatchNorms (torchvision's COCO checkpoints were made with 0).
        min_size: resized short side; a sequence picks one at random per training batch (multi-scale).
        max_size: cap on the resized long side.
        box_score_thresh: evaluation drops detections scoring below this.
        box_detections_per_img: at most this many detections per image.
        rpn_post_nms_top_n_train: proposals per image kept for the box head in training.
        rpn_post_nms_top_n_test: proposals per image kept for the box head in evaluation.
        box_batch_size_per_image: RoIs per image sampled for the box loss (fewer: cheaper CPU runs).

    Raises:
        ValueError: an unknown ``kind`` or ``depth``, or ``num_classes`` < 2.
    """

    def __init__(
        self,
        kind: DetectorKind = "maskrcnn",
        *,
        depth: int = 50,
        num_classes: int = 91,
        num_keypoints: int = 17,
        nonlocal_after: Sequence[str] = (),
        nonlocal_args: Mapping[str, Any] | None = None,
        nonlocal_block: str = "nonlocal",
        backbone_norm: BackboneNorm = "frozen",
        trainable_backbone_layers: int = 3,
        frozen_bn_eps: float = 1e-5,
        min_size: int | Sequence[int] = 800,
        max_size: int = 1333,
        box_score_thresh: float = 0.05,
        box_detections_per_img: int = 100,
        rpn_post_nms_top_n_train: int = 2000,
        rpn_post_nms_top_n_test: int = 1000,
        box_batch_size_per_image: int = 512,
    ) -> None:
        if kind not in _DETECTORS:
            raise ValueError(f"kind must be one of {sorted(_DETECTORS)}; got {kind!r}")
        if depth not in RESNET_LAYERS:
            raise ValueError(f"depth must be one of {sorted(RESNET_LAYERS)}; got {depth!r}")
        if backbone_norm not in ("frozen", "batch"):
            raise ValueError(f"backbone_norm must be 'frozen' or 'batch'; got {backbone_norm!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"num_classes counts the background too and must be an int >= 2; got {num_classes!r} "
                "(COCO: 91, person keypoints: 2)"
            )
        backbone = resnet_fpn_backbone(
            backbone_name=f"resnet{depth}",
            weights=None,
            norm_layer=functools.partial(
                FrozenBatchNorm2d if backbone_norm == "frozen" else nn.BatchNorm2d, eps=frozen_bn_eps
            ),
            trainable_layers=trainable_backbone_layers,
        )
        sizes = tuple(min_size) if isinstance(min_size, Sequence) else (min_size,)
        options: dict[str, Any] = {
            "min_size": sizes,
            "max_size": max_size,
            "box_score_thresh": box_score_thresh,
            "box_detections_per_img": box_detections_per_img,
            "rpn_post_nms_top_n_train": rpn_post_nms_top_n_train,
            "rpn_post_nms_top_n_test": rpn_post_nms_top_n_test,
            "box_batch_size_per_image": box_batch_size_per_image,
        }
        if kind == "keypointrcnn":
            options["num_keypoints"] = num_keypoints
        net = _DETECTORS[kind](backbone, num_classes=num_classes, **options)
        super().__init__(net.backbone, net.rpn, net.roi_heads, net.transform)
        self.kind, self.depth = kind, depth
        self.num_classes = num_classes
        self.num_keypoints = num_keypoints if kind == "keypointrcnn" else 0
        self.nonlocal_after, self.nonlocal_block = tuple(nonlocal_after), nonlocal_block
        if self.nonlocal_after:
            modules = dict(self.named_modules())  # an unknown name is left to insert_nonlocal's error
            channels = {
                n: KEYPOINT_HEAD_CHANNELS if n.startswith("roi_heads.") else _output_channels(modules[n], n)
                for n in nonlocal_after
                if n in modules
            }
            defaults = DEFAULT_NONLOCAL_ARGS if nonlocal_block == "nonlocal" else {}
            args = {**defaults, **dict(nonlocal_args or {})}
            insert_nonlocal(self, self.nonlocal_after, block=nonlocal_block, channels=channels, dims=2, **args)

    # -- the zoo's model contract -------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        """The box classifier/regressor (``roi_heads.box_predictor``), whose size follows ``num_classes``."""
        return self.roi_heads.box_predictor

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh class-specific layers for ``num_classes`` (with background): box predictor and mask logits."""
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes counts the background too and must be >= 2; got {num_classes!r}")
        old = self.roi_heads.box_predictor
        self.roi_heads.box_predictor = FastRCNNPredictor(old.cls_score.in_features, num_classes).to(
            old.cls_score.weight.device
        )
        if self.roi_heads.has_mask():
            logits = self.roi_heads.mask_predictor.mask_fcn_logits
            new = nn.Conv2d(logits.in_channels, num_classes, 1).to(logits.weight.device)
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(new.bias)
            self.roi_heads.mask_predictor.mask_fcn_logits = new
        self.num_classes = num_classes

    @contextlib.contextmanager
    def normalised_inputs(self) -> Iterator[None]:
        """Within this context the detector takes already normalised images (its transform skips mean/std).

        ``nlzoo explain`` prepares inputs as every zoo model's data config says (normalised by its mean/std,
        torchvision's detection statistics); this keeps them from being normalised twice.
        """
        transform = self.transform
        saved = transform.image_mean, transform.image_std
        transform.image_mean, transform.image_std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
        try:
            yield
        finally:
            transform.image_mean, transform.image_std = saved

    def forward_features(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """FPN features ``{"0": P2, ..., "3": P5, "pool": P6}`` of an already normalised, batched (B, 3, H, W)."""
        return self.backbone(images)

    def flops_forward(self, images: torch.Tensor) -> None:
        """The dense work of one test-time forward pass, runnable on the ``meta`` device (for FLOP counting).

        Backbone + FPN, the RPN head on every level, the box head on :data:`FLOPS_PROPOSALS` RoIs per image
        and the mask / keypoint head on :data:`FLOPS_DETECTIONS`. Left out, as they are data-dependent and
        cost few FLOPs: anchors, NMS, RoIAlign (FlopCounterMode has no formula for it) and post-processing.
        """
        features = self.backbone(images)
        self.rpn.head(list(features.values()))
        heads = self.roi_heads
        batch, channels = images.shape[0], self.backbone.out_channels
        box_rois = images.new_zeros(batch * FLOPS_PROPOSALS, channels, 7, 7)
        heads.box_predictor(heads.box_head(box_rois))
        rois = images.new_zeros(batch * FLOPS_DETECTIONS, channels, 14, 14)
        if heads.has_mask():
            heads.mask_predictor(heads.mask_head(rois))
        if heads.has_keypoint():
            heads.keypoint_predictor(heads.keypoint_head(rois))


def _output_channels(module: nn.Module, name: str) -> int:
    """Channels of a backbone submodule's output: those of its last weighted layer (a residual block's last
    norm, or the named norm itself; torchvision's FrozenBatchNorm2d records no ``num_features``)."""
    weights = [m.weight for m in module.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not weights:
        raise ValueError(f"cannot tell the output channels of {name!r}: it has no weighted layer")
    return int(weights[-1].shape[0])
