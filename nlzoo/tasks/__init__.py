"""LightningModules: a shared classification task, video classification with multi-view testing, images."""

from .classification import ClassificationTask
from .image import ImageClassifier
from .metrics import MultiViewMetrics
from .video import VideoClassifier

__all__ = ["ClassificationTask", "ImageClassifier", "MultiViewMetrics", "VideoClassifier"]
