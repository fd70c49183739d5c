"""LightningModules: a shared classification task, video (multi-view testing) and image classification, pose,
detection."""

from .classification import ClassificationTask
from .detection import Detector
from .image import ImageClassifier
from .metrics import MultiViewMetrics
from .pose import PoseEstimator
from .video import VideoClassifier

__all__ = ["ClassificationTask", "Detector", "ImageClassifier", "MultiViewMetrics", "PoseEstimator", "VideoClassifier"]
