"""Heatmap PCK: the training-time accuracy of SimpleBaseline (a cheap proxy; OKS AP is the real metric).

A joint counts as correct when the arg-max of its predicted heatmap lies within ``threshold`` x one tenth
of the heatmap size (per axis) of the arg-max of its target heatmap; only joints with a target are counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric


def heatmap_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) -> (B, K, 2) integer (x, y) of each heatmap's maximum."""
    w = heatmaps.shape[-1]
    index = heatmaps.flatten(-2).argmax(-1)
    return torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=-1)


class HeatmapPCK(Metric):
    """Fraction of labelled joints whose predicted peak is near the target's peak.

    Args:
        threshold: distance threshold in units of heatmap size / 10 (SimpleBaseline: 0.5, i.e. 5% of the
            heatmap's width and height).
        **kwargs: torchmetrics ``Metric`` options.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    correct: torch.Tensor
    total: torch.Tensor

    def __init__(self, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> None:
        """Args: predicted and target heatmaps (B, K, h, w), joint weights (B, K) (0 = no target)."""
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ")
        h, w = preds.shape[-2:]
        norm = preds.new_tensor([w / 10, h / 10])
        dist = ((heatmap_argmax(preds) - heatmap_argmax(target)).to(preds.dtype) / norm).norm(dim=-1)
        counted = (target_weight > 0) & (target.flatten(-2).amax(-1) > 0)
        self.correct += ((dist < self.threshold) & counted).sum()
        self.total += counted.sum()

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1)
