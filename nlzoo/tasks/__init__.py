"""LightningModules: one per task (pose estimation, ...)."""

from .pose import PoseEstimator

__all__ = ["PoseEstimator"]
