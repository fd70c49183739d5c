"""Class scores of one input by multi-view testing: a video's views (or an image, one view) scored and averaged."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..errors import ConfigError


def class_scores(
    model: nn.Module,
    views: torch.Tensor,
    *,
    batch_size: int = 4,
    multi_label: bool = False,
    track: Callable[[Iterable[torch.Tensor]], Iterable[torch.Tensor]] | None = None,
    precision: str = "auto",
) -> torch.Tensor:
    """Class scores of one video or image: softmax (sigmoid when ``multi_label``) averaged over its views.

    Args:
        model: a classifier in eval mode.
        views: (V, C, T, H, W) test views of a video, as :func:`nlzoo.inference.inputs.read_video_views` makes
            them, or (1, C, H, W) for an image (:func:`nlzoo.inference.inputs.read_image`).
        batch_size: views per forward pass.
        multi_label: sigmoid scores (multi-label models, e.g. Charades) instead of softmax.
        track: wraps the batches, e.g. a progress bar's ``track``.
        precision: inference precision (see :mod:`nlzoo.precision`); scores are computed in float32.

    Returns:
        (num_classes,) float scores on the CPU.
    """
    from ..models.inference import predict_batches

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    device = next(model.parameters()).device
    batches = predict_batches(model, views, batch_size=batch_size, precision=precision, device=device)
    scores = []
    for logits in track(batches) if track else batches:
        scores.append(logits.sigmoid() if multi_label else logits.softmax(dim=-1))
    return torch.cat(scores).mean(dim=0).cpu()
