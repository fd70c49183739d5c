"""Architectures: ResNet-3D (C2D / I3D) with non-local blocks, timm backbones with blocks, 2D -> 3D inflation."""

from .inflate import inflate_state_dict
from .resnet3d import BasicBlock3d, Bottleneck3d, ResNet3d, nonlocal_positions
from .timm_nl import create_timm_nonlocal

__all__ = [
    "BasicBlock3d",
    "Bottleneck3d",
    "ResNet3d",
    "create_timm_nonlocal",
    "inflate_state_dict",
    "nonlocal_positions",
]
