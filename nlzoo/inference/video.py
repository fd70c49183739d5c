"""Video classification by multi-view testing: the scores of a video are its views' scores averaged."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


def video_scores(
    model: nn.Module,
    views: torch.Tensor,
    *,
    batch_size: int = 4,
    multi_label: bool = False,
    track: Callable[[Iterable[torch.Tensor]], Iterable[torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Class scores of one video: softmax (sigmoid when ``multi_label``) averaged over its views.

    Args:
        model: a video classifier in eval mode.
        views: (V, C, T, H, W) test views, as :func:`nlzoo.inference.inputs.read_video_views` makes them.
        batch_size: views per forward pass.
        multi_label: sigmoid scores (multi-label models, e.g. Charades) instead of softmax.
        track: wraps the batches, e.g. a progress bar's ``track``.

    Returns:
        (num_classes,) float scores on the CPU.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    device = next(model.parameters()).device
    batches = views.split(batch_size)
    scores = []
    with torch.inference_mode():
        for batch in track(batches) if track else batches:
            logits = model(batch.to(device)).float()
            scores.append(logits.sigmoid() if multi_label else logits.softmax(dim=-1))
    return torch.cat(scores).mean(dim=0).cpu()
