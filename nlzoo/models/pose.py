"""Top-down heatmap pose model: a timm ResNet (optionally with non-local blocks) + the SimpleBaseline head.

SimpleBaseline (Xiao, Wu, Wei, "Simple Baselines for Human Pose Estimation and Tracking", ECCV 2018,
microsoft/human-pose-estimation.pytorch): three 4x4 stride-2 transposed convolutions (256 channels, no bias,
BN, ReLU) upsample the stride-32 features to stride 4, and a 1x1 convolution gives one heatmap per joint.
A 256x192 crop gives 64x48 heatmaps.

::

    image (B, 3, H, W) ── backbone (timm ResNet, NL blocks in layer3/4) ── (B, C, H/32, W/32)
      ── head.deconv_layers: 3 x [ConvTranspose2d 4x4 s2, BN, ReLU] (+ optional NL blocks) ── (B, 256, H/4, W/4)
      ── head.final_layer: Conv2d 1x1 ── heatmaps (B, K, H/4, W/4)

The backbone keeps timm's parameter names under ``backbone.``; the head's names follow the SimpleBaseline
code (``deconv_layers.{0,1,3,4,6,7}``, ``final_layer``), so its published checkpoints map by a prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import insert_nonlocal
from .timm_nl import create_timm_nonlocal


class SimpleBaselineHead(nn.Module):
    """Deconvolution head: stride-32 features -> stride-4 heatmaps.

    Args:
        in_channels: backbone feature channels.
        num_joints: heatmap channels K.
        deconv_channels: output channels of each 4x4 stride-2 transposed conv (SimpleBaseline: 256, 256, 256).
        nonlocal_after: indices of deconv stages (0-based) followed by a 2D non-local block.
        nonlocal_args: :class:`~nlzoo.layers.NonLocalBlock` arguments for those blocks.
    """

    def __init__(
        self,
        in_channels: int,
        num_joints: int,
        *,
        deconv_channels: Sequence[int] = (256, 256, 256),
        nonlocal_after: Sequence[int] = (),
        nonlocal_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not deconv_channels:
            raise ConfigError("deconv_channels needs at least one stage (SimpleBaseline: (256, 256, 256))")
        bad = [i for i in nonlocal_after if not 0 <= i < len(deconv_channels)]
        if bad:
            raise ConfigError(f"head nonlocal_after {bad}: deconv stages are 0..{len(deconv_channels) - 1}")
        layers: list[nn.Module] = []
        channels = in_channels
        for out in deconv_channels:
            layers += [
                nn.ConvTranspose2d(channels, out, kernel_size=4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.deconv_layers = nn.Sequential(*layers)
        self.num_features = channels
        self.final_layer = nn.Conv2d(channels, num_joints, kernel_size=1)
        self._init_weights()
        after = [f"deconv_layers.{3 * i + 2}" for i in sorted(set(nonlocal_after))]
        if after:
            channels_at = {f"deconv_layers.{3 * i + 2}": deconv_channels[i] for i in nonlocal_after}
            insert_nonlocal(self, after, channels=channels_at, dims=2, **dict(nonlocal_args or {}))

    def _init_weights(self) -> None:
        # SimpleBaseline's init: small normal weights for the new layers, BN at identity.
        for m in self.deconv_layers.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class TopDownPoseModel(nn.Module):
    """A single-person heatmap model for person crops; ``num_classes`` is the number of joints K.

    It keeps the zoo's model contract: ``num_classes`` (joints), ``num_features`` (backbone channels),
    ``get_classifier()`` / ``reset_classifier(k)`` (the final 1x1 conv), ``forward_features`` (backbone
    feature map) and ``forward_head`` (heatmaps).

    Args:
        backbone: a timm ResNet-family architecture (``"resnet50"``); its weights come from the zoo's tags.
        num_classes: joints K (17 for COCO person).
        nonlocal_after: backbone submodules followed by a non-local block (``["layer3.4"]``).
        head_nonlocal_after: deconv stages (0-based) followed by a non-local block.
        nonlocal_args: :class:`~nlzoo.layers.NonLocalBlock` arguments for all blocks.
        deconv_channels: channels of the head's transposed convs.
        in_chans: input channels.

    Example:
        >>> model = TopDownPoseModel("resnet18", num_classes=17)
        >>> model(torch.randn(1, 3, 96, 64)).shape
        torch.Size([1, 17, 24, 16])
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        *,
        num_classes: int = 17,
        nonlocal_after: Sequence[str] = (),
        head_nonlocal_after: Sequence[int] = (),
        nonlocal_args: Mapping[str, Any] | None = None,
        deconv_channels: Sequence[int] = (256, 256, 256),
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes is the number of joints and must be >= 1; got {num_classes!r}")
        self.backbone = create_timm_nonlocal(
            backbone,
            nonlocal_after=nonlocal_after,
            nonlocal_args=nonlocal_args,
            num_classes=0,
            global_pool="",
            in_chans=in_chans,
        )
        self.num_features: int = self.backbone.num_features
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.head = SimpleBaselineHead(
            self.num_features,
            num_classes,
            deconv_channels=deconv_channels,
            nonlocal_after=head_nonlocal_after,
            nonlocal_args=nonlocal_args,
        )

    def get_classifier(self) -> nn.Module:
        return self.head.final_layer

    def reset_classifier(self, num_classes: int) -> None:
        """A freshly initialised 1x1 conv for ``num_classes`` joints (another skeleton)."""
        if num_classes < 1:
            raise ConfigError(f"a pose model needs >= 1 joint; got {num_classes}")
        old = self.head.final_layer
        self.head.final_layer = nn.Conv2d(old.in_channels, num_classes, 1).to(old.weight.device, old.weight.dtype)
        nn.init.normal_(self.head.final_layer.weight, std=0.001)
        nn.init.zeros_(self.head.final_layer.bias)
        self.num_classes = num_classes

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects person crops (B, {self.in_chans}, H, W), e.g. (B, 3, 256, 192); "
                f"got {shape}"
            )
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(
                f"crop of {tuple(x.shape[2:])} (H, W): both must be multiples of 32 (the backbone's stride) so that "
                "the heatmaps align with the input (SimpleBaseline uses 256x192 or 384x288)"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) crops -> (B, num_features, H/32, W/32)."""
        self.check_input(x)
        return self.backbone.forward_features(x)

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """The backbone's stages (timm's ``feature_info``), module names prefixed ``backbone.``."""
        return [{**info, "module": f"backbone.{info['module']}"} for info in self.backbone.feature_info]

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The backbone's stage maps (timm's ``forward_intermediates``); the final map feeds :meth:`forward_head`."""
        self.check_input(x)
        return self.backbone.forward_intermediates(
            x,
            indices=list(indices) if isinstance(indices, Sequence) else indices,
            norm=norm,
            stop_early=stop_early,
            output_fmt=output_fmt,
            intermediates_only=intermediates_only,
        )

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop backbone stages after the last of ``indices``; the heatmap head goes with ``prune_head`` (or with
        the last stage, which it is sized for): :meth:`forward_head` then returns the feature map."""
        indices = list(indices) if isinstance(indices, Sequence) else indices
        taken = self.backbone.prune_intermediate_layers(indices, prune_norm=prune_norm, prune_head=True)
        if prune_head or max(taken) < len(self.feature_info) - 1:
            self.head = nn.Identity()
            self.num_features = self.backbone.num_features
        return taken

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features -> (B, K, H/4, W/4) heatmaps."""
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
