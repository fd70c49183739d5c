"""Video-level metrics from view-level scores: the paper's multi-view testing as a torchmetrics Metric.

Each row is one view (clip x crop) of one video. States are the rows themselves, concatenated across
DDP ranks at ``compute``, so a video's views may be scored on any ranks. Rows repeated by a distributed
sampler's padding are dropped by their (video, view) key before scores are averaged per video.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_accuracy, multilabel_average_precision
from torchmetrics.utilities import dim_zero_cat

from ...errors import ConfigError


class MultiViewMetrics(Metric):
    """Average (or max) view scores per video, then top-k accuracy or, for multi-label data, mAP.

    Args:
        num_classes: classes.
        multi_label: report macro mAP over classes (Charades) instead of top-k accuracy.
        top_k: accuracies to report (those above ``num_classes`` are left out).
        reduction: ``"mean"`` (the paper: softmax scores averaged) or ``"max"`` over a video's views.

    ``compute()`` returns ``{"top1": ..., "top5": ..., "videos": n}`` or ``{"mAP": ..., "videos": n}``.
    """

    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        *,
        multi_label: bool = False,
        top_k: tuple[int, ...] = (1, 5),
        reduction: Literal["mean", "max"] = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "max"):
            raise ConfigError(f"reduction must be 'mean' or 'max'; got {reduction!r}")
        self.num_classes, self.multi_label, self.reduction = num_classes, multi_label, reduction
        self.top_k = tuple(k for k in top_k if k <= num_classes)
        for name in ("scores", "targets", "videos", "views"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, scores: torch.Tensor, targets: torch.Tensor, videos: torch.Tensor, views: torch.Tensor) -> None:
        """Add rows: ``scores`` (N, K) probabilities, ``targets`` (N,) indices or (N, K) multi-hot,
        ``videos`` (N,) video ids, ``views`` (N,) view ids within each video."""
        if not (scores.shape[0] == targets.shape[0] == videos.shape[0] == views.shape[0]):
            raise ValueError(
                f"rows disagree: scores {tuple(scores.shape)}, targets {tuple(targets.shape)}, "
                f"videos {tuple(videos.shape)}, views {tuple(views.shape)}"
            )
        self.scores.append(scores.detach().float())
        self.targets.append(targets.detach())
        self.videos.append(videos.detach().long())
        self.views.append(views.detach().long())

    def video_scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(video ids (V,), aggregated scores (V, K), targets)`` over all rows seen (on all ranks)."""
        scores, targets = dim_zero_cat(self.scores), dim_zero_cat(self.targets)
        videos, views = dim_zero_cat(self.videos), dim_zero_cat(self.views)
        keep = _first_of_each(torch.stack([videos, views], dim=1))
        scores, targets, videos = scores[keep], targets[keep], videos[keep]
        ids, row_video = torch.unique(videos, return_inverse=True)
        video_targets = targets[_first_of_each(videos)]  # ordered as ids (torch.unique sorts)
        if not torch.equal(video_targets[row_video], targets):
            raise ValueError("views of the same video carry different targets; are video ids unique?")
        if self.reduction == "mean":
            summed = scores.new_zeros(len(ids), scores.shape[1]).index_add_(0, row_video, scores)
            counts = torch.bincount(row_video, minlength=len(ids)).unsqueeze(1)
            aggregated = summed / counts
        else:
            aggregated = scores.new_full((len(ids), scores.shape[1]), -math.inf).scatter_reduce_(
                0, row_video.unsqueeze(1).expand_as(scores), scores, "amax"
            )
        return ids, aggregated, video_targets

    def compute(self) -> dict[str, torch.Tensor]:
        if _num_rows(self.scores) == 0:
            names = ["mAP"] if self.multi_label else [f"top{k}" for k in self.top_k]
            return {**{n: torch.tensor(float("nan")) for n in names}, "videos": torch.tensor(0.0)}
        ids, scores, targets = self.video_scores()
        out: dict[str, torch.Tensor] = {}
        if self.multi_label:
            out["mAP"] = multilabel_average_precision(scores, targets.long(), num_labels=self.num_classes)
        else:
            for k in self.top_k:
                out[f"top{k}"] = multiclass_accuracy(
                    scores, targets, num_classes=self.num_classes, top_k=k, average="micro"
                )
        out["videos"] = torch.tensor(float(len(ids)), device=scores.device)
        return out


def _num_rows(state: list[torch.Tensor] | torch.Tensor) -> int:
    """Rows in a list state, which is a list locally and one concatenated tensor after a DDP sync."""
    return sum(len(t) for t in state) if isinstance(state, list) else len(state)


def _first_of_each(keys: torch.Tensor) -> torch.Tensor:
    """Row indices of the first occurrence of each distinct key (rows of a 2-D tensor, or values of 1-D)."""
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    positions = torch.arange(len(inverse), device=keys.device)
    first = torch.full((int(inverse.max()) + 1,), len(inverse), device=keys.device, dtype=torch.long)
    return first.scatter_reduce_(0, inverse, positions, "amin")
