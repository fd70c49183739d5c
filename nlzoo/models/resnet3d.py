"""ResNet-3D in the C2D and I3D forms of "Non-local Neural Networks" (Wang et al., CVPR 2018).

Follows the authors' video-nonlocal-net (Caffe2) and PySlowFast: a 1x7x7 (C2D) or 5x7x7 (I3D) stem with
spatial stride 2, a 1x3x3 spatial max-pool, a (2,1,1) temporal max-pool after res2, bottleneck (R50/R101)
or basic (R18/R34) residual blocks whose first conv is inflated to 3 frames in I3D's alternating pattern,
zero-initialised last BN in every residual block, global average pooling, dropout 0.5 and a linear head.
Non-local blocks go after chosen residual blocks of res3/res4. Parameter names are torchvision/timm's
(``conv1``, ``bn1``, ``layer1..4``, ``downsample``, ``fc``), so 2D ImageNet weights inflate by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import insert_nonlocal
from ..layers.pooling import MaxPool3d
from .conv_backend import conv_bn_relu
from .features import FeatureStage, StagedFeatures

Temporal = Literal["c2d", "i3d"]

DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}


def i3d_inflated(stage: int, index: int) -> bool:
    """Whether block ``index`` of ``stage`` (1..4 = res2..res5) gets a 3-frame kernel in I3D.

    The authors' pattern: res2 every block; res3 and res4 blocks 0, 2, 4, ...; res5 blocks 1, 3, ...
    (R50: res3 1,0,1,0; res4 1,0,1,0,1,0; res5 0,1,0; R101 alternates over its 23 res4 blocks).
    """
    if stage == 1:
        return True
    return index % 2 == (1 if stage == 4 else 0)


class BasicBlock3d(nn.Module):
    """Two 3x3 convs (the first inflated to t x 3 x 3 in I3D) and an identity or projection shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1, temporal_kernel: int = 1) -> None:
        super().__init__()
        t = temporal_kernel
        self.conv1 = nn.Conv3d(inplanes, planes, (t, 3, 3), (1, stride, stride), (t // 2, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), 1, (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = conv_bn_relu(self.conv1, self.bn1, self.relu, x)
        return conv_bn_relu(self.conv2, self.bn2, self.relu, x, shortcut)


class Bottleneck3d(nn.Module):
    """t x 1 x 1 -> 1 x 3 x 3 (spatial stride here, as PySlowFast) -> 1 x 1 x 1, times 4 channels."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1, temporal_kernel: int = 1) -> None:
        super().__init__()
        t, width = temporal_kernel, planes
        self.conv1 = nn.Conv3d(inplanes, width, (t, 1, 1), 1, (t // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = conv_bn_relu(self.conv1, self.bn1, self.relu, x)
        x = conv_bn_relu(self.conv2, self.bn2, self.relu, x)
        return conv_bn_relu(self.conv3, self.bn3, self.relu, x, shortcut)


def _shortcut(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv3d(inplanes, outplanes, 1, (1, stride, stride), bias=False), nn.BatchNorm3d(outplanes))


class TemporalMaxPool(MaxPool3d):
    """Max-pool over time only; a single frame passes through, so a 1-frame clip is exactly an image."""

    def __init__(self, size: int) -> None:
        super().__init__((size, 1, 1), (size, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[2] == 1 else super().forward(x)


class ResNet3d(StagedFeatures, nn.Module):
    """C2D / I3D ResNet with optional non-local blocks.

    ::

        x (B,3,T,H,W) ─ conv1 (t0x7x7, /1,2,2) ─ bn1 ─ relu ─ maxpool (1x3x3, /1,2,2)
          ─ layer1 (res2) ─ pool2 (2x1x1, /2,1,1) ─ layer2 (res3) ─ layer3 (res4) ─ layer4 (res5)
          ─ global avg pool ─ dropout ─ fc ─ logits (B, num_classes)
        (non-local blocks sit after chosen blocks of layer2/layer3, named e.g. ``layer2.1_nonlocal``)

    Feature stages (``forward_intermediates``, ``features_only``): ``relu`` (stem, stride 2), ``layer1`` (4),
    ``layer2`` (8), ``layer3`` (16), ``layer4`` (32); a stage's non-local blocks are part of it.

    Args:
        depth: 18, 34 (basic blocks) or 50, 101 (bottlenecks).
        temporal: ``"c2d"`` (all kernels 1 in time) or ``"i3d"`` (5x7x7 stem, 3x1x1 inflation).
        num_classes: classifier outputs; 0 gives a model that returns pooled features.
        nonlocal_after: block names to follow with a non-local block, e.g. ``("layer2.1", "layer3.1")``.
        nonlocal_args: :class:`~nlzoo.layers.NonLocalBlock` arguments (``instantiation``, ``subsample``, ...).
        nonlocal_stage_args: per-stage overrides of ``nonlocal_args``, e.g. ``{"layer2": {"temporal_groups": 4}}``
            (the authors' long-clip nets attend within groups of 4 frames in res3 only).
        dropout: dropout before the classifier (the paper: 0.5).
        stem_temporal_stride: 1 for 8x8 clips (PySlowFast); 2 for the paper's 32-frame models, whose conv1
            and pool1 also stride 2 in time (video-nonlocal-net ``resnet_video_org``).
        stem_pool_temporal_kernel: temporal kernel of the stem max-pool (its temporal stride is
            ``stem_temporal_stride``); default ``stem_temporal_stride``, i.e. a max over each pair of frames
            in the 32-frame nets. mmaction2's I3D uses 1 with stride 2: it keeps every other frame.
        stem_pool_padding: spatial zero-padding of the stem max-pool: 1 (PySlowFast, pytorchvideo,
            mmaction2; 112 -> 56 px) or 0 (the authors' Caffe2 nets in video-nonlocal-net; 112 -> 55 px).
        in_chans: input channels.
        zero_init_last: zero the last BN gamma of each residual block (the authors' BN_INIT_GAMMA = 0).
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        temporal: Temporal = "i3d",
        num_classes: int = 400,
        nonlocal_after: Sequence[str] = (),
        nonlocal_args: Mapping[str, Any] | None = None,
        nonlocal_stage_args: Mapping[str, Mapping[str, Any]] | None = None,
        dropout: float = 0.5,
        stem_temporal_stride: int = 1,
        stem_pool_temporal_kernel: int | None = None,
        stem_pool_padding: int = 1,
        in_chans: int = 3,
        zero_init_last: bool = True,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ConfigError(f"depth must be one of {sorted(DEPTHS)}; got {depth!r}")
        if temporal not in ("c2d", "i3d"):
            raise ConfigError(f"temporal must be 'c2d' or 'i3d'; got {temporal!r}")
        if stem_temporal_stride not in (1, 2):
            raise ConfigError(
                f"stem_temporal_stride must be 1 (8x8 clips) or 2 (32x2 clips); got {stem_temporal_stride}"
            )
        pool_t = stem_temporal_stride if stem_pool_temporal_kernel is None else stem_pool_temporal_kernel
        if not isinstance(pool_t, int) or not 1 <= pool_t <= 3:
            raise ConfigError(
                f"stem_pool_temporal_kernel must be 1, 2 or 3 (or None); got {stem_pool_temporal_kernel!r}"
            )
        if stem_pool_padding not in (0, 1):
            raise ConfigError(f"stem_pool_padding must be 0 (Caffe2 nets) or 1; got {stem_pool_padding!r}")
        kind, layers = DEPTHS[depth]
        block: type[BasicBlock3d] | type[Bottleneck3d] = BasicBlock3d if kind == "basic" else Bottleneck3d
        self.depth, self.temporal, self.in_chans = depth, temporal, in_chans
        self.stem_temporal_stride, self.stem_pool_temporal_kernel = stem_temporal_stride, pool_t
        t0, ts, p = (5 if temporal == "i3d" else 1), stem_temporal_stride, stem_pool_padding
        self.conv1 = nn.Conv3d(in_chans, 64, (t0, 7, 7), (ts, 2, 2), (t0 // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = MaxPool3d((pool_t, 3, 3), (ts, 2, 2), (0, p, p))
        self.pool2 = TemporalMaxPool(2)
        inplanes = 64
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers, strict=True), start=1):
            blocks = []
            for i in range(count):
                inflate = temporal == "i3d" and i3d_inflated(stage, i)
                stride = 2 if (i == 0 and stage > 1) else 1
                blocks.append(block(inplanes, planes, stride=stride, temporal_kernel=3 if inflate else 1))
                inplanes = planes * block.expansion
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))
        self.num_features = inplanes
        self.global_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.num_classes = num_classes
        self.fc: nn.Module = nn.Linear(inplanes, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(zero_init_last)
        stage_args = dict(nonlocal_stage_args or {})
        unknown = sorted(set(stage_args) - {f"layer{i}" for i in range(1, 5)})
        if unknown:
            raise ConfigError(f"nonlocal_stage_args keys must be stage names layer1..layer4; got {unknown}")
        self.nonlocal_after = tuple(nonlocal_after)
        if self.nonlocal_after:
            channels = {n: _block_out_channels(m) for n, m in self.named_modules() if n in self.nonlocal_after}
            for stage in dict.fromkeys(name.split(".")[0] for name in self.nonlocal_after):
                after = [n for n in self.nonlocal_after if n.split(".")[0] == stage]
                args = {**dict(nonlocal_args or {}), **dict(stage_args.get(stage, {}))}
                insert_nonlocal(self, after, channels=channels, dims=3, **args)

    def _init_weights(self, zero_init_last: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if isinstance(self.fc, nn.Linear):
            nn.init.normal_(self.fc.weight, std=0.01)
            nn.init.zeros_(self.fc.bias)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, BasicBlock3d | Bottleneck3d):
                    m.zero_init_last()

    # The timm model contract --------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one of ``num_classes`` outputs (0: features only)."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.fc, nn.Linear):
            nn.init.normal_(self.fc.weight, std=0.01)
            nn.init.zeros_(self.fc.bias)

    def min_input_size(self) -> tuple[int, int, int]:
        """Smallest (T, H, W): 32 px so res4's non-local blocks can subsample; 1 frame (an image) unless the
        stem's temporal max-pool needs more frames out of conv1."""
        frames = (self.stem_pool_temporal_kernel - 1) * self.stem_temporal_stride + 1
        return (frames, 32, 32)

    def check_input(self, x: torch.Tensor) -> None:
        t_min, h_min, w_min = self.min_input_size()
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != self.in_chans:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects clips (B, {self.in_chans}, T, H, W), e.g. (B, 3, 8, 224, 224); "
                f"got {shape}. A (B, T, C, H, W) batch needs x.permute(0, 2, 1, 3, 4)."
            )
        if x.shape[2] < t_min or x.shape[3] < h_min or x.shape[4] < w_min:
            raise ValueError(
                f"clip of {tuple(x.shape[2:])} (T, H, W) is too small: {type(self).__name__} needs at least "
                f"{t_min} frame(s) and {h_min}x{w_min} pixels (it was designed for 8x224x224 and 32x224x224)"
            )

    def feature_stages(self) -> list[FeatureStage]:
        """The stem and res2..res5 (timm's ResNet taps); time is strided by the stem and by ``pool2``."""
        ts = self.stem_temporal_stride
        stages = [FeatureStage(("conv1", "bn1", "relu"), 64, 2, ts)]
        before = ("maxpool", "pool2", None, None)
        for stage, (pool, width) in enumerate(zip(before, (64, 128, 256, 512), strict=True), start=1):
            steps = (pool, f"layer{stage}") if pool else (f"layer{stage}",)
            expansion = Bottleneck3d.expansion if DEPTHS[self.depth][0] == "bottleneck" else 1
            stages.append(FeatureStage(steps, width * expansion, 2 ** (stage + 1), ts * (1 if stage == 1 else 2)))
        return stages

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(self.global_pool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _block_out_channels(block: nn.Module) -> int:
    if isinstance(block, Bottleneck3d):
        return block.bn3.num_features
    if isinstance(block, BasicBlock3d):
        return block.bn2.num_features
    raise ConfigError(f"non-local blocks go after residual blocks ('layerK.i'); got a {type(block).__name__}")


def nonlocal_positions(depth: int, placement: str) -> tuple[str, ...]:
    """Block names for a placement: ``"nl"`` = res3 {1,3} + res4 {1,3,5} (authors / PySlowFast; for R101 this is
    PySlowFast's I3D_NLN_8x8_R101 config, while the authors' Caffe2 code puts res4's at 6, 13, 20 - neither
    published R101 non-local weights, so there is no second R101 entry),
    ``"nl10"`` = every res3 and res4 block (R50: 4 + 6), ``"none"`` = no blocks."""
    layers = DEPTHS[depth][1]
    if placement == "none":
        return ()
    if placement == "nl":
        picks = {2: (1, 3), 3: (1, 3, 5)}
        return tuple(f"layer{s}.{i}" for s, idx in picks.items() for i in idx if i < layers[s - 1])
    if placement == "nl10":
        return tuple(f"layer{s}.{i}" for s in (2, 3) for i in range(layers[s - 1]))
    raise ConfigError(f"placement must be 'none', 'nl' or 'nl10'; got {placement!r}")
