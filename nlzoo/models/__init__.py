"""Architectures: ResNet-3D (C2D / I3D), timm and torchvision video backbones with non-local blocks, inflation."""

from .inflate import inflate_state_dict
from .memory_format import has_3d_convs, to_channels_last
from .resnet3d import BasicBlock3d, Bottleneck3d, ResNet3d, nonlocal_positions
from .timm_nl import create_timm_nonlocal
from .torchvision_video import TorchvisionS3D, TorchvisionVideoResNet

__all__ = [
    "BasicBlock3d",
    "Bottleneck3d",
    "ResNet3d",
    "TorchvisionS3D",
    "TorchvisionVideoResNet",
    "create_timm_nonlocal",
    "has_3d_convs",
    "inflate_state_dict",
    "nonlocal_positions",
    "to_channels_last",
]
