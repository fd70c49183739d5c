"""COCO keypoint AP (OKS) as a torchmetrics Metric, computed by pycocotools' ``COCOeval(iouType='keypoints')``.

torchmetrics has no keypoint metric (its ``MeanAveragePrecision`` takes only boxes and masks), so this one
collects top-down predictions on every rank, gathers them (list states, concatenated across DDP ranks),
applies the COCO top-down protocol of SimpleBaseline (instance score = box score x mean confident-joint
score, then OKS non-maximum suppression per image) and hands the result list to pycocotools.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ...errors import ConfigError
from ...models.skeleton import COCO_OKS_SIGMAS

log = logging.getLogger("nlzoo")

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


class CocoKeypointAP(Metric):
    """OKS AP / AR of top-down keypoint predictions against a COCO person_keypoints ground truth.

    Args:
        ground_truth: the ground-truth JSON path or its loaded dict; may be set later with
            :meth:`set_ground_truth` (a task reads it from its data module).
        sigmas: per-joint OKS sigmas; default COCO's 17 (pycocotools' ``kpt_oks_sigmas``). ``None``: not known
            yet (:meth:`set_sigmas`); updates are refused until they are.
        in_vis_threshold: joints scoring above this count toward the instance score (SimpleBaseline: 0.2).
        nms_threshold: OKS above which a lower-scored instance of the same image is suppressed
            (SimpleBaseline: 0.9); ``None`` keeps every instance.
        **kwargs: torchmetrics ``Metric`` options.

    ``compute()`` returns pycocotools' ten summary numbers (``AP``, ``AP50``, ``AP75``, ``APm``, ``APl``,
    ``AR``, ...) in [0, 1]; an area range without ground truth gives -1, as in pycocotools.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    image_ids: list[torch.Tensor]
    keypoints: list[torch.Tensor]
    scores: list[torch.Tensor]
    areas: list[torch.Tensor]
    indices: list[torch.Tensor]

    def __init__(
        self,
        ground_truth: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        sigmas: Sequence[float] | None = COCO_OKS_SIGMAS,
        in_vis_threshold: float = 0.2,
        nms_threshold: float | None = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sigmas: np.ndarray | None = None
        self.set_sigmas(sigmas)
        self.in_vis_threshold = in_vis_threshold
        self.nms_threshold = nms_threshold
        self._ground_truth = ground_truth
        self._coco: Any = None
        for name in ("image_ids", "keypoints", "scores", "areas", "indices"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def set_sigmas(self, sigmas: Sequence[float] | None) -> None:
        """Per-joint OKS sigmas of the skeleton being evaluated (one per heatmap channel)."""
        self.sigmas = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)

    def set_ground_truth(self, ground_truth: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        """Use this ground truth (a person_keypoints JSON path or dict) from the next ``compute()`` on."""
        if ground_truth is not self._ground_truth:
            self._ground_truth, self._coco = ground_truth, None

    @property
    def has_ground_truth(self) -> bool:
        return self._ground_truth is not None

    def update(
        self,
        keypoints: torch.Tensor,
        image_ids: torch.Tensor,
        scores: torch.Tensor,
        *,
        areas: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
    ) -> None:
        """Add a batch of person predictions.

        Args:
            keypoints: (B, K, 3) image-space x, y and joint confidence (heatmap maximum).
            image_ids: (B,) COCO image ids.
            scores: (B,) person box scores (1 for ground-truth boxes).
            areas: (B,) crop-window areas in pixels, the scale for OKS-NMS (default: the keypoints' extent).
            indices: (B,) dataset indices; an index seen twice is counted once (DDP samplers pad with
                repeats).
        """
        if self.sigmas is None:
            raise ConfigError(
                "OKS needs one sigma per joint for this skeleton; pass sigmas= (COCO's are for 17 joints)"
            )
        if keypoints.dim() != 3 or keypoints.shape[-1] != 3 or keypoints.shape[1] != len(self.sigmas):
            raise ValueError(
                f"keypoints must be (B, K, 3) = x, y, confidence with K = {len(self.sigmas)} joints (one per OKS "
                f"sigma); got {tuple(keypoints.shape)}"
            )
        b = keypoints.shape[0]
        if areas is None:
            extent = keypoints[..., :2].amax(1) - keypoints[..., :2].amin(1)
            areas = extent.prod(-1)
        if indices is None:
            indices = torch.full((b,), -1, dtype=torch.long, device=keypoints.device)
        for name, value in (("image_ids", image_ids), ("scores", scores), ("areas", areas), ("indices", indices)):
            if value.shape != (b,):
                raise ValueError(f"{name} must have shape ({b},); got {tuple(value.shape)}")
        self.keypoints.append(keypoints.detach().float())
        self.image_ids.append(image_ids.detach().long())
        self.scores.append(scores.detach().float())
        self.areas.append(areas.detach().float())
        self.indices.append(indices.detach().long())

    def compute(self) -> dict[str, torch.Tensor]:
        coco = self._load_ground_truth()
        results = self._results()
        if not results:
            log.warning("CocoKeypointAP: no predictions to evaluate; every number is 0")
            return {name: torch.tensor(0.0) for name in STAT_NAMES}
        unknown = sorted({r["image_id"] for r in results} - set(coco.getImgIds()))
        if unknown:
            raise ConfigError(f"predictions for image ids {unknown[:5]} that the ground truth does not contain")
        from pycocotools.cocoeval import COCOeval

        with _captured_prints() as printed:
            detections = coco.loadRes(results)
            evaluator = COCOeval(coco, detections, iouType="keypoints")
            evaluator.params.kpt_oks_sigmas = self.sigmas
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        log.debug("pycocotools:\n%s", printed.getvalue())
        return {name: torch.tensor(float(v)) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}

    def _load_ground_truth(self) -> Any:
        if self._coco is not None:
            return self._coco
        if self._ground_truth is None:
            raise RuntimeError(
                "CocoKeypointAP has no ground truth: pass ground_truth= (the person_keypoints JSON) "
                "or call set_ground_truth()"
            )
        from pycocotools.coco import COCO

        with _captured_prints():
            if isinstance(self._ground_truth, Mapping):
                coco = COCO()
                coco.dataset = dict(self._ground_truth)
                coco.createIndex()
            else:
                coco = COCO(os.fspath(self._ground_truth))
        self._coco = coco
        return coco

    def _results(self) -> list[dict[str, Any]]:
        """COCO results (``image_id``, ``category_id``, ``keypoints``, ``score``) after rescoring and NMS."""
        if not self.keypoints:
            return []
        keypoints = dim_zero_cat(self.keypoints).cpu().double().numpy()
        image_ids = dim_zero_cat(self.image_ids).cpu().numpy()
        box_scores = dim_zero_cat(self.scores).cpu().double().numpy()
        areas = dim_zero_cat(self.areas).cpu().double().numpy()
        indices = dim_zero_cat(self.indices).cpu().numpy()
        keep = _first_occurrences(indices)
        confident = keypoints[..., 2] > self.in_vis_threshold
        joint_score = np.where(confident, keypoints[..., 2], 0).sum(1) / np.maximum(confident.sum(1), 1)
        scores = box_scores * joint_score
        by_image: dict[int, list[int]] = defaultdict(list)
        for i in keep:
            by_image[int(image_ids[i])].append(int(i))
        category = self._person_category()
        results = []
        for image_id, members in by_image.items():
            if self.nms_threshold is not None:
                members = self._oks_nms(members, keypoints, scores, areas)
            for i in members:
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": category,
                        "keypoints": keypoints[i].reshape(-1).round(3).tolist(),
                        "score": float(scores[i]),
                    }
                )
        return results

    def _person_category(self) -> int:
        categories = [c for c in self._load_ground_truth().dataset.get("categories", []) if c.get("keypoints")]
        if not categories:
            raise ConfigError("the ground truth has no category with keypoints; is it a person_keypoints file?")
        return int(categories[0]["id"])

    def _oks_nms(self, members: list[int], kpts: np.ndarray, scores: np.ndarray, areas: np.ndarray) -> list[int]:
        """Greedy NMS by OKS between predictions (joints both predicted above the visibility threshold)."""
        order = sorted(members, key=lambda i: -scores[i])
        variances = (2 * self.sigmas) ** 2
        kept: list[int] = []
        while order:
            best, order = order[0], order[1:]
            kept.append(best)
            survivors = []
            for other in order:
                both = (kpts[best, :, 2] > self.in_vis_threshold) & (kpts[other, :, 2] > self.in_vis_threshold)
                d2 = ((kpts[best, :, :2] - kpts[other, :, :2]) ** 2).sum(-1)
                scale = (areas[best] + areas[other]) / 2 + np.spacing(1)
                oks = np.exp(-d2 / variances / scale / 2)[both].mean() if both.any() else 0.0
                if oks <= self.nms_threshold:
                    survivors.append(other)
            order = survivors
        return kept


def _first_occurrences(indices: np.ndarray) -> np.ndarray:
    """Positions to keep: all where the index is -1 (unknown), else the first of each index."""
    unknown = np.flatnonzero(indices < 0)
    _, first = np.unique(indices, return_index=True)
    known = first[indices[first] >= 0]
    return np.sort(np.concatenate([unknown, known]))


@contextlib.contextmanager
def _captured_prints() -> Any:
    """pycocotools prints progress to stdout; keep it for the debug log instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer
