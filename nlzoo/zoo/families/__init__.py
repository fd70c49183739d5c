"""Registered model families: importing this package fills the registry."""

from . import resnet3d  # noqa: F401
