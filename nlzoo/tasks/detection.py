"""Detection, instance segmentation and keypoints with torchvision's R-CNNs, as a LightningModule.

Training is torchvision's: the detector returns its losses (RPN objectness and box regression, box
classification and regression, mask or keypoint loss), summed with equal weights. The optimiser is
Detectron's 1x schedule: SGD with momentum 0.9, weight decay 1e-4 (none on norms and biases), learning rate
0.02 for a global batch of 16 images, linear warm-up over 500 iterations from 1/3, divided by 10 at 60k
and 80k of 90k iterations. The learning rate scales linearly with the global batch (Goyal et al.) and the
step milestones inversely, so a run at another batch sees the same number of epochs.

Evaluation is COCO's: box and mask AP through torchmetrics' ``MeanAveragePrecision`` (pycocotools, or
faster-coco-eval when installed), keypoint AP through :class:`~nlzoo.tasks.metrics.oks.CocoKeypointAP`
(pycocotools' OKS). Both gather over DDP ranks and count an image repeated by a padding sampler once.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision

from ..models.skeleton import Skeleton, default_skeleton
from ..zoo import load
from .metrics.oks import CocoKeypointAP
from .model_config import record_data_config, restore_data_config, save_data_config
from .optim import build_optimizer, build_scheduler, ensure_finite_loss, param_groups

log = logging.getLogger("nlzoo")

Images = list[torch.Tensor]
Targets = list[dict[str, torch.Tensor]]
Backend = Literal["auto", "pycocotools", "faster_coco_eval"]


class UniqueImageMeanAveragePrecision(MeanAveragePrecision):
    """torchmetrics' ``MeanAveragePrecision`` that counts each image id once (DDP samplers pad with repeats)."""

    image_ids: list[torch.Tensor]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("image_ids", default=[], dist_reduce_fx=None)

    def update(self, preds: Targets, target: Targets, image_ids: torch.Tensor | None = None) -> None:  # type: ignore[override]
        """As torchmetrics', plus the images' ids (default: all distinct)."""
        super().update(preds, target)
        if image_ids is None:
            image_ids = -1 - torch.arange(len(target), device=self.device) - sum(len(i) for i in self.image_ids)
        self.image_ids.extend(i.reshape(1) for i in image_ids.to(self.device))

    def compute(self) -> dict:
        seen: set[int] = set()
        keep = []
        for position, image_id in enumerate(int(i) for i in self.image_ids):
            if image_id < 0 or image_id not in seen:
                keep.append(position)
                seen.add(image_id)
        if len(keep) < len(self.image_ids):
            for name in self._defaults:
                values = getattr(self, name)
                if isinstance(values, list) and len(values) == len(self.image_ids):
                    setattr(self, name, [values[k] for k in keep])
        return super().compute()


def resolve_coco_backend(requested: Backend) -> str:
    """``auto``: faster-coco-eval when it is installed, else pycocotools.

    Both give the same box and mask AP; faster-coco-eval 1.8 computed them 1.3-1.8x faster than pycocotools on
    64 synthetic val images (0.40 vs 0.51 s with 1,280 detections, 0.18 vs 0.32 s with 173), one CPU thread.
    """
    if requested != "auto":
        return requested
    return "faster_coco_eval" if importlib.util.find_spec("faster_coco_eval") else "pycocotools"


class Detector(pl.LightningModule):
    """Train and evaluate a Faster / Mask / Keypoint R-CNN of the zoo (or any torchvision ``GeneralizedRCNN``).

    Args:
        model: a zoo name (``"maskrcnn_r50_fpn_nl"``, ``"keypointrcnn_r101_fpn_nl_head.imagenet"``) or a module.
        num_classes: detection classes with background (linked from the data module by the CLI); a zoo
            model's class-specific layers are re-initialised when it differs from the weights'.
        pretrained: for a zoo name: its default tag (``True``), a tag (``"imagenet"``, ``"coco"``) or none.
        model_args: architecture arguments (``{"min_size": [640, 672, 704, 736, 768, 800]}`` for multi-scale).
        label_names: class names by label (linked from the data module), kept with the model.
        lr: learning rate for a global batch of ``base_batch_size`` images (Detectron: 0.02 for 16).
        base_batch_size: the global batch ``lr`` and ``milestones`` are stated for.
        momentum: SGD momentum.
        weight_decay: L2 decay, not applied to norm layers and biases.
        warmup_steps: linear warm-up length in optimiser steps at ``base_batch_size``.
        warmup_start_factor: learning-rate multiplier at the start of the warm-up (Detectron: 1/3).
        milestones: optimiser steps (at ``base_batch_size``) where the rate is multiplied by ``gamma``.
        gamma: step decay factor.
        mask_threshold: mask probability at which a pixel belongs to the instance, for mask AP.
        coco_backend: ``"auto"``, ``"pycocotools"`` or ``"faster_coco_eval"`` for box and mask AP.
        ground_truth: the keypoint evaluation's person_keypoints JSON; default the data module's
            ``val_annotations``.

    Example:
        >>> task = Detector("fasterrcnn_r50_fpn", num_classes=3, model_args={"min_size": 64, "max_size": 96})
        >>> task.model.num_classes
        3
    """

    def __init__(
        self,
        model: str | nn.Module = "maskrcnn_r50_fpn_nl",
        num_classes: int | None = None,
        *,
        pretrained: bool | str | None = None,
        model_args: Mapping[str, Any] | None = None,
        label_names: list[str] | None = None,
        lr: float = 0.02,
        base_batch_size: int = 16,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_steps: int = 500,
        warmup_start_factor: float = 1 / 3,
        milestones: Sequence[int] = (60_000, 80_000),
        gamma: float = 0.1,
        mask_threshold: float = 0.5,
        coco_backend: Backend = "auto",
        ground_truth: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(model, str):
            self.save_hyperparameters()
            head = {"num_classes": num_classes} if num_classes is not None else {}
            self.model = load(model, pretrained=pretrained, **head, **dict(model_args or {}))
        else:
            self.save_hyperparameters(ignore=["model"])
            self.model = model
            if num_classes is not None and getattr(model, "num_classes", num_classes) != num_classes:
                raise ValueError(f"the model detects {model.num_classes} classes but num_classes={num_classes}")
        if label_names is not None and len(label_names) != self.model.num_classes:
            raise ValueError(
                f"{len(label_names)} label names for {self.model.num_classes} classes (background included)"
            )
        config = getattr(self.model, "nlzoo_config", None)
        if config is not None and label_names is not None:
            config.label_names = list(label_names)
        heads = self.model.roi_heads
        self.with_masks, self.with_keypoints = heads.has_mask(), heads.has_keypoint()
        iou_types = ("bbox", "segm") if self.with_masks else ("bbox",)
        backend = resolve_coco_backend(coco_backend)
        self.val_map = UniqueImageMeanAveragePrecision(iou_type=iou_types, backend=backend)
        self.test_map = UniqueImageMeanAveragePrecision(iou_type=iou_types, backend=backend)
        self.skeleton: Skeleton | None = None
        if self.with_keypoints:
            self.skeleton = default_skeleton(int(heads.keypoint_predictor.kps_score_lowres.out_channels))
            sigmas = self.skeleton.oks_sigmas if self.skeleton else None
            self.val_oks = CocoKeypointAP(ground_truth, sigmas=sigmas, nms_threshold=None)
            self.test_oks = CocoKeypointAP(ground_truth, sigmas=sigmas, nms_threshold=None)

    # -- data ---------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Check the data against the model; take the skeleton and keypoint ground truth from the data module."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        record_data_config(self.model, datamodule)
        if datamodule is None:
            return
        classes = getattr(datamodule, "num_classes", None)
        if isinstance(classes, int) and classes > self.model.num_classes:
            raise ValueError(
                f"the data has category ids up to {classes - 1} but the model detects {self.model.num_classes} "
                f"classes (background included); set model.num_classes={classes} (the CLI links it from the data)"
            )
        if not self.with_keypoints:
            return
        skeleton = getattr(datamodule, "skeleton", None)
        if isinstance(skeleton, Skeleton):
            joints = self.model.roi_heads.keypoint_predictor.kps_score_lowres.out_channels
            if skeleton.num_joints != joints:
                raise ValueError(
                    f"the data has {skeleton.num_joints} keypoints but the model predicts {joints}; "
                    f"set model.model_args.num_keypoints={skeleton.num_joints}"
                )
            self.skeleton = skeleton
            for metric in (self.val_oks, self.test_oks):
                metric.set_sigmas(skeleton.oks_sigmas)
        ground_truth = getattr(datamodule, "val_annotations", None)
        if self.hparams.ground_truth is None and ground_truth is not None:
            self.val_oks.set_ground_truth(ground_truth)
            self.test_oks.set_ground_truth(ground_truth)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_data_config(self.model, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        restore_data_config(self.model, checkpoint)

    # -- steps --------------------------------------------------------------------------------------------
    def forward(self, images: Images) -> Targets:
        return self.model(images)

    def training_step(self, batch: tuple[Images, Targets], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.model(images, targets)
        loss = ensure_finite_loss(sum(losses.values()), self)
        size = len(images)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: tuple[Images, Targets], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Images, Targets], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[Images, Targets], batch_idx: int) -> Targets:
        """The detections of each image, with its ``image_id``."""
        images, targets = batch
        return [{**out, "image_id": t["image_id"]} for out, t in zip(self.model(images), targets, strict=True)]

    def _evaluate(self, batch: tuple[Images, Targets], stage: str) -> None:
        images, targets = batch
        outputs = self.model(images)
        preds = [self._prediction(out) for out in outputs]
        truths = [self._ground_truth(t) for t in targets]
        ids = torch.stack([t["image_id"] for t in targets])
        getattr(self, f"{stage}_map").update(preds, truths, image_ids=ids)
        if self.with_keypoints:
            self._update_oks(getattr(self, f"{stage}_oks"), outputs, targets)

    def _prediction(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = {"boxes": out["boxes"], "scores": out["scores"], "labels": out["labels"]}
        if self.with_masks:
            pred["masks"] = out["masks"][:, 0] > self.hparams.mask_threshold
        return pred

    def _ground_truth(self, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        truth = {k: target[k] for k in ("boxes", "labels", "iscrowd", "area") if k in target}
        if self.with_masks:
            truth["masks"] = target["masks"].bool()
        return truth

    @staticmethod
    def _update_oks(metric: CocoKeypointAP, outputs: Targets, targets: Targets) -> None:
        """COCO keypoint results: torchvision's keypoints (visibility 1) scored by their box, no extra NMS."""
        for out, target in zip(outputs, targets, strict=True):
            n = len(out["boxes"])
            if n == 0:
                continue
            boxes = out["boxes"]
            # One index per (image, detection), so that only an image repeated by a DDP sampler is dropped.
            indices = target["index"] * 10_000 + torch.arange(n, device=boxes.device) if "index" in target else None
            metric.update(
                out["keypoints"],
                target["image_id"].expand(n),
                out["scores"],
                areas=(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
                indices=indices,
            )

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        metric = getattr(self, f"{stage}_map")
        values = {  # torchmetrics names box-only results "map", "map_50", ...: always "bbox_map", ... here
            k if k.startswith(("bbox_", "segm_")) else f"bbox_{k}": v
            for k, v in metric.compute().items()
            if v.numel() == 1 and k != "classes"
        }
        metric.reset()
        self.log_dict({f"{stage}/{k}": v.float() for k, v in values.items()}, prog_bar=False)
        if self.with_keypoints:
            oks = getattr(self, f"{stage}_oks")
            if not oks.has_ground_truth:
                raise RuntimeError(
                    "keypoint AP needs the ground-truth keypoints: give the task ground_truth=... or use a data "
                    "module with val_annotations"
                )
            results = oks.compute()
            oks.reset()
            self.log_dict({f"{stage}/keypoint_{k}": v for k, v in results.items()})

    # -- optimisation -------------------------------------------------------------------------------------
    def global_batch_size(self) -> int:
        """Images per optimiser step over all devices (batch size x devices x accumulation)."""
        trainer = self.trainer
        per_device = getattr(trainer.datamodule, "batch_size", None) if trainer.datamodule is not None else None
        if not isinstance(per_device, int):
            loader = trainer.train_dataloader
            per_device = getattr(loader, "batch_size", None) if loader is not None else None
        if not isinstance(per_device, int):
            raise ValueError("cannot tell the batch size: use a data module with a batch_size attribute")
        return per_device * trainer.world_size * trainer.accumulate_grad_batches

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        scale = self.global_batch_size() / hp.base_batch_size  # linear scaling rule
        lr = hp.lr * scale
        groups = param_groups(self.model, weight_decay=hp.weight_decay)
        optimizer = build_optimizer(groups, name="sgd", lr=lr, momentum=hp.momentum)
        milestones = [round(m / scale) for m in hp.milestones]
        log.info(
            "detection schedule: global batch %d -> lr %.4g, warm-up %d steps, milestones %s",
            self.global_batch_size(),
            lr,
            round(hp.warmup_steps / scale),
            milestones,
        )
        scheduler = build_scheduler(
            optimizer,
            total_steps=max(milestones, default=1),
            schedule="step",
            warmup_steps=round(hp.warmup_steps / scale),
            warmup_start_factor=hp.warmup_start_factor,
            milestones=milestones,
            gamma=hp.gamma,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
