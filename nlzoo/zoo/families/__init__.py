"""Registered model families: importing this package fills the registry."""

from . import (
    pose,  # noqa: F401
    resnet3d,  # noqa: F401
)
