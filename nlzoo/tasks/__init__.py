"""LightningModules: a shared classification task, video classification with multi-view testing."""

from .classification import ClassificationTask
from .metrics import MultiViewMetrics
from .video import VideoClassifier

__all__ = ["ClassificationTask", "MultiViewMetrics", "VideoClassifier"]
