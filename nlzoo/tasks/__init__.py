"""LightningModules: a shared classification task, video (multi-view testing) and image classification, pose."""

from .classification import ClassificationTask
from .image import ImageClassifier
from .metrics import MultiViewMetrics
from .pose import PoseEstimator
from .video import VideoClassifier

__all__ = ["ClassificationTask", "ImageClassifier", "MultiViewMetrics", "PoseEstimator", "VideoClassifier"]
