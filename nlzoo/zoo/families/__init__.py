"""Registered model families: importing this package fills the registry."""

from . import detection, image, pose, resnet3d, torchvision_video  # noqa: F401
