from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from nlzoo.models.skeleton import COCO_KEYPOINT_NAMES, COCO_OKS_SIGMAS
from nlzoo.tasks.metrics import CocoKeypointAP, HeatmapPCK

THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _person(x0: float, y0: float, visible: int = 17) -> np.ndarray:
    joints = np.zeros((17, 3))
    joints[:, 0] = x0 + 4.0 * np.arange(17)
    joints[:, 1] = y0 + 6.0 * np.arange(17)
    joints[:visible, 2] = 2
    joints[visible:, :2] = 0
    return joints


def _ground_truth(people: dict[int, list[tuple[np.ndarray, float]]]) -> dict:
    images = [{"id": i, "file_name": f"{i}.png", "width": 640, "height": 480} for i in people]
    anns = []
    for image_id, persons in people.items():
        for joints, area in persons:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": joints.reshape(-1).tolist(),
                    "num_keypoints": int((joints[:, 2] > 0).sum()),
                    "bbox": [0, 0, 100, 120],
                    "area": area,
                    "iscrowd": 0,
                }
            )
    category = {"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINT_NAMES), "skeleton": []}
    return {"images": images, "annotations": anns, "categories": [category]}


def _predict(metric: CocoKeypointAP, image_ids: list[int], joints: list[np.ndarray], **kwargs: torch.Tensor) -> None:
    keypoints = torch.tensor(np.stack(joints), dtype=torch.float32)
    keypoints[..., 2] = 0.9  # joint confidences
    metric.update(keypoints, torch.tensor(image_ids), torch.ones(len(image_ids)), **kwargs)


def test_perfect_predictions_score_one() -> None:
    people = {1: [(_person(10, 20), 2500.0), (_person(200, 30, visible=12), 12000.0)], 2: [(_person(50, 60), 2500.0)]}
    metric = CocoKeypointAP(_ground_truth(people))
    _predict(metric, [1, 1, 2], [p for persons in people.values() for p, _ in persons])
    results = metric.compute()
    for name in ("AP", "AP50", "AP75", "APm", "APl", "AR"):
        assert results[name].item() == pytest.approx(1.0), name


def test_a_known_shift_costs_what_the_oks_formula_says() -> None:
    """One person, every joint 4 px off: OKS = mean_k exp(-d^2 / (2 s^2 (2 sigma_k)^2)), s^2 = area."""
    joints, area, shift = _person(30, 40), 2500.0, 4.0
    metric = CocoKeypointAP(_ground_truth({7: [(joints, area)]}))
    moved = joints.copy()
    moved[:, 0] += shift
    _predict(metric, [7], [moved])
    sigmas = np.asarray(COCO_OKS_SIGMAS)
    oks = np.mean(np.exp(-(shift**2) / (2 * area * (2 * sigmas) ** 2)))
    assert 0.6 < oks < 0.9 and np.min(np.abs(THRESHOLDS - oks)) > 0.01  # a case the thresholds separate
    results = metric.compute()
    assert results["AP"].item() == pytest.approx(np.mean(oks >= THRESHOLDS)) == 0.5  # OKS 0.734
    assert results["AP50"].item() == 1.0 and results["AP75"].item() == float(oks >= 0.75)
    assert results["APl"].item() == -1  # no large person in the ground truth (pycocotools' convention)


def test_duplicates_from_padded_ddp_samplers_count_once_and_nms_drops_near_copies() -> None:
    joints = _person(10, 20)
    gt = _ground_truth({1: [(joints, 3000.0)]})
    deduped = CocoKeypointAP(gt, nms_threshold=None)
    _predict(deduped, [1, 1], [joints, joints], indices=torch.tensor([5, 5]))
    assert deduped.compute()["AP"].item() == pytest.approx(1.0)
    without_nms = CocoKeypointAP(gt, nms_threshold=None)
    with_nms = CocoKeypointAP(gt, nms_threshold=0.9)
    for metric in (without_nms, with_nms):  # a near copy of a correct prediction, with a lower score
        keypoints = torch.tensor(np.stack([joints, joints + np.array([0.5, 0.5, 0])]), dtype=torch.float32)
        keypoints[..., 2] = torch.tensor([[0.9], [0.5]])
        metric.update(keypoints, torch.tensor([1, 1]), torch.ones(2), areas=torch.full((2,), 3000.0))
    assert without_nms.compute()["AP"].item() == pytest.approx(1.0)  # the copy ranks below the match
    assert without_nms._results()[1]["score"] == pytest.approx(0.5)
    assert len(with_nms._results()) == 1


def test_states_from_several_ranks_are_concatenated() -> None:
    people = {1: [(_person(10, 20), 2500.0)], 2: [(_person(50, 60), 2500.0)]}
    rank0, rank1 = CocoKeypointAP(_ground_truth(people)), CocoKeypointAP(_ground_truth(people))
    assert all(rank0._reductions[s].__name__ == "dim_zero_cat" for s in ("keypoints", "image_ids", "indices"))
    _predict(rank0, [1], [people[1][0][0]], indices=torch.tensor([0]))
    _predict(rank1, [2, 1], [people[2][0][0], people[1][0][0]], indices=torch.tensor([1, 0]))  # padded repeat
    rank0.merge_state(rank1)
    assert rank0.compute()["AP"].item() == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric CocoKeypointAP was called before")
def test_bad_use_is_explained(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(RuntimeError, match="no ground truth"):
        CocoKeypointAP().compute()
    metric = CocoKeypointAP(_ground_truth({1: [(_person(0, 0), 100.0)]}))
    with pytest.raises(ValueError, match=r"keypoints must be \(B, K, 3\) .* K = 17 joints"):
        metric.update(torch.zeros(1, 17, 2), torch.tensor([1]), torch.ones(1))
    with pytest.raises(ValueError, match="OKS needs one sigma per joint"):
        CocoKeypointAP(sigmas=None).update(torch.zeros(1, 5, 3), torch.tensor([1]), torch.ones(1))
    _predict(metric, [4], [_person(0, 0)])
    with pytest.raises(ValueError, match=r"image ids \[4\] that the ground truth does not contain"):
        metric.compute()
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        empty = CocoKeypointAP(_ground_truth({1: [(_person(0, 0), 100.0)]})).compute()
    assert empty["AP"].item() == 0 and "no predictions" in caplog.text


def test_heatmap_pck_counts_labelled_joints_near_the_target_peak() -> None:
    target = torch.zeros(1, 3, 20, 20)
    target[0, :, 10, 10] = 1
    preds = torch.zeros_like(target)
    preds[0, 0, 10, 10] = 1  # exact
    preds[0, 1, 10, 16] = 1  # 6 px off with a 1 px (= 0.5 x 20 / 10) tolerance
    preds[0, 2, 0, 0] = 1  # wrong but unlabelled
    metric = HeatmapPCK()
    metric.update(preds, target, torch.tensor([[1.0, 1.0, 0.0]]))
    assert metric.compute().item() == pytest.approx(0.5)
