"""Architectures: ResNet-3D (C2D / I3D) with non-local blocks, and 2D -> 3D weight inflation."""

from .inflate import inflate_state_dict
from .resnet3d import BasicBlock3d, Bottleneck3d, ResNet3d, nonlocal_positions

__all__ = ["BasicBlock3d", "Bottleneck3d", "ResNet3d", "inflate_state_dict", "nonlocal_positions"]
