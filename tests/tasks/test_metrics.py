from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.classification import multilabel_average_precision

from nlzoo.tasks import MultiViewMetrics

# Three videos x two views, three classes. Per-video means (by hand):
#   video 0: (0.7,0.2,0.1), (0.1,0.5,0.4) -> (0.40,0.35,0.25) -> class 0
#   video 1: (0.2,0.7,0.1), (0.2,0.3,0.5) -> (0.20,0.50,0.30) -> class 1
#   video 7: (0.1,0.1,0.8), (0.5,0.4,0.1) -> (0.30,0.25,0.45) -> class 2
SCORES = torch.tensor(
    [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.7, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]]
)
VIDEOS = torch.tensor([0, 0, 1, 1, 7, 7])
VIEWS = torch.tensor([0, 1, 0, 1, 0, 1])
TARGETS = torch.tensor([0, 0, 2, 2, 2, 2])  # video 0 right, video 1 wrong (1 vs 2), video 7 right


def test_mean_of_views_then_accuracy_matches_hand_computation() -> None:
    metric = MultiViewMetrics(3)
    order = torch.tensor([5, 2, 0, 3, 1, 4])  # views in any order, over several updates
    metric.update(SCORES[order[:4]], TARGETS[order[:4]], VIDEOS[order[:4]], VIEWS[order[:4]])
    metric.update(SCORES[order[4:]], TARGETS[order[4:]], VIDEOS[order[4:]], VIEWS[order[4:]])
    ids, scores, targets = metric.video_scores()
    assert ids.tolist() == [0, 1, 7] and targets.tolist() == [0, 2, 2]
    torch.testing.assert_close(scores, torch.tensor([[0.4, 0.35, 0.25], [0.2, 0.5, 0.3], [0.3, 0.25, 0.45]]))
    out = metric.compute()
    assert set(out) == {"top1", "videos"}  # top-5 needs at least 5 classes
    assert out["top1"].item() == pytest.approx(2 / 3) and out["videos"].item() == 3


def test_rows_repeated_by_sampler_padding_are_counted_once() -> None:
    metric = MultiViewMetrics(3)
    metric.update(SCORES, TARGETS, VIDEOS, VIEWS)
    # A distributed sampler pads a rank with copies of rows already seen; counted twice, video 0's
    # view 1 would tip its mean to class 1 and the accuracy to 1/3.
    metric.update(SCORES[1:2].repeat(3, 1), TARGETS[1:2].repeat(3), VIDEOS[1:2].repeat(3), VIEWS[1:2].repeat(3))
    assert metric.compute()["top1"].item() == pytest.approx(2 / 3)


def test_max_reduction_and_top5() -> None:
    metric = MultiViewMetrics(6, reduction="max")
    scores = torch.tensor([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1], [0.0, 0.9, 0.0, 0.0, 0.1, 0.0]])
    metric.update(scores, torch.tensor([0, 0]), torch.tensor([3, 3]), torch.tensor([0, 1]))
    video = metric.video_scores()[1]
    torch.testing.assert_close(video, torch.tensor([[0.5, 0.9, 0.1, 0.1, 0.1, 0.1]]))
    out = metric.compute()
    assert out["top1"].item() == 0.0 and out["top5"].item() == 1.0


def test_multi_label_map_on_video_scores() -> None:
    metric = MultiViewMetrics(3, multi_label=True)
    targets = torch.tensor([[1, 0, 1], [1, 0, 1], [0, 1, 0], [0, 1, 0], [1, 1, 0], [1, 1, 0]]).float()
    metric.update(SCORES, targets, VIDEOS, VIEWS)
    expected_scores = torch.tensor([[0.4, 0.35, 0.25], [0.2, 0.5, 0.3], [0.3, 0.25, 0.45]])
    expected = multilabel_average_precision(expected_scores, targets[::2].long(), num_labels=3)
    assert metric.compute()["mAP"].item() == pytest.approx(expected.item())


def test_inconsistent_targets_and_empty_state() -> None:
    metric = MultiViewMetrics(3)
    metric.update(SCORES[:2], torch.tensor([0, 1]), VIDEOS[:2], VIEWS[:2])
    with pytest.raises(ValueError, match="different targets"):
        metric.compute()
    with pytest.warns(UserWarning, match="before the ``update``"):
        empty = MultiViewMetrics(3).compute()
    assert math.isnan(empty["top1"].item()) and empty["videos"].item() == 0
    with pytest.raises(ValueError, match="rows disagree"):
        MultiViewMetrics(3).update(SCORES, TARGETS[:2], VIDEOS, VIEWS)
