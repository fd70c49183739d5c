"""``VideoClassifier``: action recognition with the paper's multi-view testing.

Training sees one random clip per video. Validation and test batches hold every view (clips x crops)
of their videos with ``index`` (video id) and ``view`` per row, as :class:`~nlzoo.data.VideoDataModule`
yields them; class scores (softmax, or sigmoid for multi-label data) are averaged per video and the
video-level top-1/top-5 (or mAP) is computed over all ranks by :class:`~nlzoo.tasks.metrics.MultiViewMetrics`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from .classification import Batch, ClassificationTask
from .metrics import MultiViewMetrics


class VideoClassifier(ClassificationTask):
    """Video classification over (B, C, T, H, W) clips; see :class:`ClassificationTask` for all arguments.

    Args:
        model: registry name (e.g. ``"i3d_r50_nl"``) or a network instance.
        num_classes: classifier outputs (linked from the data module by the CLI).
        view_reduction: how a video's view scores combine: ``"mean"`` (the paper) or ``"max"``
            (PySlowFast's choice for Charades).
        **kwargs: :class:`ClassificationTask` arguments (optimiser, schedule, freeze_bn, multi_label, ...).

    Example:
        >>> task = VideoClassifier("c2d_r18", pretrained=False, num_classes=5)
        >>> task.data_config.num_frames
        8
    """

    input_key: ClassVar[str] = "video"

    def __init__(
        self,
        model: str | nn.Module,
        num_classes: int | None = None,
        *,
        view_reduction: Literal["mean", "max"] = "mean",
        **kwargs: Any,
    ) -> None:
        self.view_reduction = view_reduction
        super().__init__(model, num_classes, **kwargs)

    def make_eval_metrics(self) -> MultiViewMetrics:
        return MultiViewMetrics(self.num_classes, multi_label=self.hparams.multi_label, reduction=self.view_reduction)

    def update_eval_metrics(self, metrics: MultiViewMetrics, scores: torch.Tensor, batch: Batch) -> None:
        metrics.update(scores, batch["label"], batch["index"], batch["view"])
