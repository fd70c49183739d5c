"""Metrics torchmetrics lacks: video-level multi-view scores across DDP ranks, COCO keypoint OKS AP, heatmap PCK."""

from .multiview import MultiViewMetrics
from .oks import CocoKeypointAP
from .pck import HeatmapPCK

__all__ = ["CocoKeypointAP", "HeatmapPCK", "MultiViewMetrics"]
