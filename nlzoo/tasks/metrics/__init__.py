"""Metrics torchmetrics lacks: COCO keypoint OKS AP (via pycocotools) and heatmap PCK."""

from .oks import CocoKeypointAP
from .pck import HeatmapPCK

__all__ = ["CocoKeypointAP", "HeatmapPCK"]
