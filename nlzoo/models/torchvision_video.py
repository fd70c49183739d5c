"""torchvision's Kinetics-400 video networks (R3D-18, MC3-18, R(2+1)D-18, S3D) with non-local blocks.

Users who cannot train a Kinetics model from scratch can fine-tune these today: torchvision publishes
Kinetics-400 weights for them, and a new non-local block is an exact identity (its norm starts at zero), so
blocks inserted into a pretrained network leave its predictions unchanged until fine-tuning teaches them.

The models here *adopt* the modules of the network ``torchvision.models.video.<arch>(weights=None)`` builds,
under the same attribute names, and add the zoo's model contract. State-dict keys are therefore torchvision's
own, with no prefix: a torchvision state dict loads by key, and the only extra keys are the blocks'
``*_nonlocal.*`` (e.g. ``layer2.1_nonlocal.conv_theta.weight``, ``features.6_nonlocal.norm.weight``).

Placement follows the paper's rule for ResNet-50 (after res3 blocks 1, 3 and res4 blocks 1, 3, 5): every
other block of the two middle stages, counting from block 1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torchvision.models import video as tv_video
from torchvision.models.video.s3d import SepInceptionBlock3D

from ..errors import ConfigError
from ..layers import insert_nonlocal
from .features import FeatureStage, StagedFeatures

VideoResNetArch = Literal["r3d_18", "mc3_18", "r2plus1d_18"]

_VIDEO_RESNETS: dict[str, Callable[..., nn.Module]] = {
    "r3d_18": tv_video.r3d_18,
    "mc3_18": tv_video.mc3_18,
    "r2plus1d_18": tv_video.r2plus1d_18,
}

# Video ResNet-18 stages have 2 blocks, so "every other block from block 1" of res3 / res4 (torchvision's
# layer2 / layer3, 28x28 and 14x14 at 224 px) is block 1 of each: 2 non-local blocks.
VIDEO_RESNET_NONLOCAL: tuple[str, ...] = ("layer2.1", "layer3.1")

# S3D's Inception stages 3 (Mixed_3b, 3c; 28x28 at 224 px) and 4 (Mixed_4b..4f; 14x14) match res3 / res4 in
# resolution. Every other block from block 1: Mixed_3c (features.6), Mixed_4c (features.9), Mixed_4e
# (features.11): 3 non-local blocks, at 480, 512 and 528 channels.
S3D_NONLOCAL: tuple[str, ...] = ("features.6", "features.9", "features.11")

# S3D's feature stages: (last module in ``features``, channels, spatial stride, temporal stride).
_S3D_STAGE_ENDS: tuple[tuple[str, int, int, int], ...] = (
    ("0", 64, 2, 2),
    ("3", 192, 4, 2),
    ("6", 480, 8, 2),
    ("12", 832, 16, 4),
    ("15", 1024, 32, 8),
)


class _TorchvisionVideo(StagedFeatures, nn.Module, ABC):
    """The zoo's model contract around adopted torchvision modules; subclasses define the stages and head."""

    num_classes: int
    num_features: int

    def _check_num_classes(self, num_classes: int) -> None:
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(f"num_classes must be an int >= 0 (0 returns pooled features); got {num_classes!r}")

    def _insert_blocks(
        self, after: Sequence[str], channels: Mapping[str, int] | None, nonlocal_args: Mapping[str, Any] | None
    ) -> None:
        self.nonlocal_after = tuple(after)
        if self.nonlocal_after:
            insert_nonlocal(self, self.nonlocal_after, channels=channels, dims=3, **dict(nonlocal_args or {}))

    @abstractmethod
    def min_input_size(self) -> tuple[int, int, int]: ...

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear ValueError for anything but a (B, 3, T, H, W) clip of at least :meth:`min_input_size`."""
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects clips (B, 3, T, H, W); got {shape}. "
                "A (B, T, C, H, W) batch needs x.permute(0, 2, 1, 3, 4)."
            )
        t_min, h_min, w_min = self.min_input_size()
        if x.shape[2] < t_min or x.shape[3] < h_min or x.shape[4] < w_min:
            raise ValueError(
                f"clip of {tuple(x.shape[2:])} (T, H, W) is too small: {type(self).__name__} needs at least "
                f"{t_min} frame(s) and {h_min}x{w_min} pixels"
            )

    @abstractmethod
    def feature_stages(self) -> list[FeatureStage]: ...

    @abstractmethod
    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class TorchvisionVideoResNet(_TorchvisionVideo):
    """torchvision's ``VideoResNet`` (R3D-18, MC3-18 or R(2+1)D-18) with non-local blocks.

    ::

        x (B,3,T,H,W) ─ stem ─ layer1 ─ layer2 ─ layer3 ─ layer4 ─ avgpool ─ dropout ─ fc ─ logits
        (non-local blocks after layer2.1 and layer3.1 by default: ``layer2.1_nonlocal``, ``layer3.1_nonlocal``)

    Keys are torchvision's (``stem.*``, ``layer1..4.*``, ``fc.*``) plus ``*_nonlocal.*``.

    Args:
        arch: the torchvision builder, ``"r3d_18"``, ``"mc3_18"`` or ``"r2plus1d_18"``.
        num_classes: classifier outputs; 0 gives a model that returns pooled features (B, 512).
        nonlocal_after: blocks to follow with a non-local block; ``()`` gives torchvision's network.
        nonlocal_args: :class:`~nlzoo.layers.NonLocalBlock` arguments (``instantiation``, ``subsample``, ...).
        dropout: dropout before ``fc`` (torchvision has none: 0 keeps its network exactly; it holds no weights).

    Raises:
        ValueError: an unknown ``arch`` or a negative ``num_classes``.
    """

    def __init__(
        self,
        arch: VideoResNetArch = "r2plus1d_18",
        *,
        num_classes: int = 400,
        nonlocal_after: Sequence[str] = VIDEO_RESNET_NONLOCAL,
        nonlocal_args: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if arch not in _VIDEO_RESNETS:
            raise ConfigError(f"arch must be one of {sorted(_VIDEO_RESNETS)}; got {arch!r}")
        self._check_num_classes(num_classes)
        self.arch = arch
        net = _VIDEO_RESNETS[arch](weights=None, num_classes=max(num_classes, 1))
        self.stem, self.layer1, self.layer2 = net.stem, net.layer1, net.layer2
        self.layer3, self.layer4, self.avgpool = net.layer3, net.layer4, net.avgpool
        self.dropout = nn.Dropout(dropout)
        self.num_features = net.fc.in_features
        self.num_classes = num_classes
        self.fc: nn.Module = net.fc if num_classes > 0 else nn.Identity()
        self._insert_blocks(nonlocal_after, None, nonlocal_args)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh ``fc`` of ``num_classes`` outputs, initialised as torchvision does (N(0, 0.01), zero bias)."""
        self._check_num_classes(num_classes)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.fc, nn.Linear):
            nn.init.normal_(self.fc.weight, 0, 0.01)
            nn.init.zeros_(self.fc.bias)

    def min_input_size(self) -> tuple[int, int, int]:
        """Smallest (T, H, W): 32 px leaves 4x4 at layer3 so its non-local block can subsample."""
        return (1, 32, 32)

    def feature_stages(self) -> list[FeatureStage]:
        """``stem`` (stride 1x2x2) and ``layer1..4``; each later stage strides by its first block's shortcut
        (2x2x2, or 1x2x2 in MC3's 2D stages). The last map is (B, 512, T', H', W')."""
        stages = [FeatureStage(("stem",), 64, 2, 1)]
        spatial, temporal = 2, 1
        for i, width in enumerate((64, 128, 256, 512), start=1):
            first = getattr(self, f"layer{i}")[0]
            t, s, _ = first.downsample[0].stride if first.downsample is not None else (1, 1, 1)
            spatial, temporal = spatial * s, temporal * t
            stages.append(FeatureStage((f"layer{i}",), width, spatial, temporal))
        return stages

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(self.avgpool(x).flatten(1))
        return x if pre_logits else self.fc(x)


class TorchvisionS3D(_TorchvisionVideo):
    """torchvision's S3D with non-local blocks in its middle Inception stages.

    ::

        x (B,3,T,H,W) ─ features (stem, Mixed_3b..5c) ─ avgpool (2x7x7, stride 1)
          ─ classifier (dropout ─ 1x1x1 conv) ─ mean over (T, H, W) ─ logits
        (non-local blocks after Mixed_3c, 4c, 4e by default: ``features.6_nonlocal``, ``.9_``, ``.11_``)

    The head is torchvision's: a 1x1x1 convolution over each pooled window, averaged, so logits equal
    torchvision's for any clip size. Changing ``num_classes`` replaces that conv (``classifier.1``) with a new
    ``Conv3d(1024, num_classes, 1)``; keys are torchvision's (``features.*``, ``classifier.1.*``) plus
    ``*_nonlocal.*``.

    Args:
        num_classes: classifier outputs; 0 gives a model that returns pooled features (B, 1024).
        nonlocal_after: Inception blocks to follow with a non-local block; ``()`` gives torchvision's network.
        nonlocal_args: :class:`~nlzoo.layers.NonLocalBlock` arguments.
        dropout: dropout before the classifier conv (torchvision's default, 0.2).

    Raises:
        ValueError: a negative ``num_classes``.
    """

    def __init__(
        self,
        *,
        num_classes: int = 400,
        nonlocal_after: Sequence[str] = S3D_NONLOCAL,
        nonlocal_args: Mapping[str, Any] | None = None,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self._check_num_classes(num_classes)
        net = tv_video.s3d(weights=None, num_classes=max(num_classes, 1), dropout=dropout)
        self.features, self.avgpool, self.classifier = net.features, net.avgpool, net.classifier
        self.num_features = self.classifier[1].in_channels
        self.num_classes = num_classes
        if num_classes == 0:
            self.classifier[1] = nn.Identity()
        modules = dict(self.named_modules())
        channels = {n: _inception_out_channels(modules[n]) for n in nonlocal_after if _is_inception(modules.get(n))}
        self._insert_blocks(nonlocal_after, channels, nonlocal_args)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh 1x1x1 conv of ``num_classes`` outputs (PyTorch's default init, as torchvision's S3D)."""
        self._check_num_classes(num_classes)
        self.num_classes = num_classes
        self.classifier[1] = nn.Conv3d(self.num_features, num_classes, 1) if num_classes > 0 else nn.Identity()

    def min_input_size(self) -> tuple[int, int, int]:
        """Smallest (T, H, W): the 2x7x7 average pool needs a 2x7x7 feature map, i.e. 13 frames of 209 px.

        (Time is strided by 2 three times, ceil, ceil, floor; space 32x. torchvision states 14 x 224 x 224.)
        """
        return (13, 209, 209)

    def feature_stages(self) -> list[FeatureStage]:
        """Five stages ending at ``features.0`` (Conv_1a), ``.3`` (Conv_2c), ``.6`` (Mixed_3c), ``.12``
        (Mixed_4f) and ``.15`` (Mixed_5c), each with the non-local block that follows its last module.
        The last map is (B, 1024, T/8, H/32, W/32)."""
        names = list(self.features._modules)
        stages, steps = [], []
        for i, name in enumerate(names):
            steps.append(f"features.{name}")
            end = _S3D_STAGE_ENDS[len(stages)]
            following = names[i + 1] if i + 1 < len(names) else None
            if name.removesuffix("_nonlocal") == end[0] and following != f"{end[0]}_nonlocal":
                stages.append(FeatureStage(tuple(steps), *end[1:]))
                steps = []
        return stages

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pooled windows -> logits (B, num_classes); ``pre_logits`` gives their mean (B, 1024), before dropout."""
        x = self.avgpool(x)
        if pre_logits:
            return x.mean(dim=(2, 3, 4))
        return self.classifier(x).mean(dim=(2, 3, 4))


def _is_inception(block: nn.Module | None) -> bool:
    return isinstance(block, SepInceptionBlock3D)


def _inception_out_channels(block: nn.Module) -> int:
    """Output channels of an Inception block: its branches' last norm widths, summed (they are concatenated).

    (insert_nonlocal's own inference reads the last module's width, which here is branch3's alone.)
    """
    branches = [m for name, m in block.named_children() if name.startswith("branch")]
    widths = [[m.num_features for m in b.modules() if isinstance(m, nn.BatchNorm3d)][-1] for b in branches]
    return sum(widths)
