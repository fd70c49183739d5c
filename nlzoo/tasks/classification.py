"""``ClassificationTask``: the LightningModule shared by video and image classification.

It builds (or takes) the network, trains it with cross-entropy (or sigmoid BCE for multi-label data),
and reports top-1/top-5 accuracy (or mAP) with torchmetrics. Subclasses name the batch key of their
inputs and may replace the evaluation metric (:class:`~nlzoo.tasks.video.VideoClassifier` averages the
views of each video). Batches are dicts with the input under ``input_key``, ``label`` (class indices or
multi-hot vectors) and optionally ``skipped`` (unreadable samples replaced or dropped by the data).
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAveragePrecision

from ..errors import ConfigError
from ..models.memory_format import to_channels_last
from ..zoo import DataConfig, load
from .model_config import record_data_config, restore_data_config, save_data_config
from .optim import OptimizerName, ScheduleName, build_optimizer, build_scheduler, ensure_finite_loss, param_groups
from .rng_state import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)
RNG_KEY = "nlzoo_rng_state"
Batch = dict[str, Any]


class ClassificationTask(pl.LightningModule):
    """Classifier training, validation and testing around any network with a ``num_classes`` head.

    Args:
        model: a registry name built with :func:`nlzoo.load` (``"i3d_r50_nl"``, ``"arch.tag"``, a model folder,
            ``"hf-hub:org/repo"``) or a network instance (then not stored in the hyper-parameters).
        num_classes: classifier outputs (linked from the data module by the CLI); a different head size on
            an instance is re-initialised through its ``reset_classifier``.
        pretrained: with a registry name, ``True`` (default) for its default weights, a tag name, or ``False``
            for a randomly initialised network (training from scratch), as :func:`nlzoo.load`.
        model_args: architecture arguments, e.g. ``{"dropout": 0.5, "nonlocal_args": {...}}``.
        label_names: class names, kept in the model's config for saving.
        multi_label: sigmoid + binary cross-entropy and mAP, for datasets where a sample has several classes.
        label_smoothing: cross-entropy label smoothing (single-label only).
        freeze_bn: keep every BatchNorm in eval mode with frozen affine parameters (the paper's 128-frame
            fine-tuning). This includes the BN after W_z of non-local blocks, so start from weights whose
            blocks were trained: a fresh block's zero gamma would stay zero. (Lightning notes the BN modules
            in eval mode when training starts; that is intended.)
        optimizer: ``"sgd"`` (momentum) or ``"adamw"``.
        lr: base learning rate (scale it linearly with the global batch).
        momentum: SGD momentum.
        nesterov: Nesterov momentum (the authors' Caffe2 runs).
        weight_decay: L2 decay, not applied to norm layers and biases unless ``decay_norm_and_bias``.
        decay_norm_and_bias: decay norm-layer parameters and biases too.
        schedule: ``"cosine"``, ``"step"`` or ``"constant"``, applied per optimiser step.
        warmup_epochs: linear warm-up length (fractions allowed).
        warmup_start_factor: learning-rate multiplier at the start of the warm-up.
        milestones: epochs at which ``"step"`` multiplies the rate by ``gamma``.
        gamma: step decay factor.
        min_lr_factor: final multiplier of the cosine schedule.
        channels_last: keep the network's weights in channels-last layouts (faster convolutions, see
            :mod:`nlzoo.models.memory_format`); off gives PyTorch's default layout.
    """

    input_key: ClassVar[str] = "input"

    def __init__(
        self,
        model: str | nn.Module,
        num_classes: int | None = None,
        *,
        pretrained: bool | str = True,
        model_args: dict[str, Any] | None = None,
        label_names: list[str] | None = None,
        multi_label: bool = False,
        label_smoothing: float = 0.0,
        freeze_bn: bool = False,
        optimizer: OptimizerName = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 1e-4,
        decay_norm_and_bias: bool = False,
        schedule: ScheduleName = "cosine",
        warmup_epochs: float = 0.0,
        warmup_start_factor: float = 0.1,
        milestones: list[float] | None = None,
        gamma: float = 0.1,
        min_lr_factor: float = 0.0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self._skipped_inputs: dict[str, list[str]] = {}  # "path: reason" per stage, reported at epoch end
        self.save_hyperparameters(ignore=["model"] if isinstance(model, nn.Module) else None)
        if multi_label and label_smoothing:
            raise ConfigError("label_smoothing applies to single-label training; set it to 0 with multi_label")
        if label_names is not None and num_classes is not None and len(label_names) != num_classes:
            raise ConfigError(f"{len(label_names)} label names for num_classes={num_classes}")
        self.model = _build_network(model, num_classes, pretrained, model_args or {})
        if channels_last:
            to_channels_last(self.model)
        self.num_classes = int(self.model.num_classes)
        self.label_names = list(label_names) if label_names is not None else None
        config = getattr(self.model, "nlzoo_config", None)
        if config is not None:
            config.num_classes, config.label_names = self.num_classes, self.label_names
        if freeze_bn:  # eval mode now: Lightning restores each module's own mode after evaluation
            for module in self._batch_norms():
                module.requires_grad_(False).eval()
        self.train_top1 = None if multi_label else MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        self.val_metrics = self.make_eval_metrics()
        self.test_metrics = self.make_eval_metrics()
        self._resume_rng: dict[str, Any] | None = None

    # Hooks subclasses specialise -------------------------------------------------------------------------
    def make_eval_metrics(self) -> Metric | MetricCollection:
        """Per-sample top-1/top-5 accuracy, or macro mAP for multi-label data."""
        if self.hparams.multi_label:
            return MetricCollection({"mAP": MultilabelAveragePrecision(self.num_classes)})
        ks = [k for k in (1, 5) if k <= self.num_classes]
        return MetricCollection({f"top{k}": MulticlassAccuracy(self.num_classes, top_k=k, average="micro") for k in ks})

    def update_eval_metrics(self, metrics: Metric | MetricCollection, scores: torch.Tensor, batch: Batch) -> None:
        metrics.update(scores, batch["label"])

    def mix_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs and targets after batch-level augmentation (none here; mixup/cutmix for images).

        Returning float (B, num_classes) targets makes them soft targets: cross-entropy against them without
        further label smoothing (the mixer applies it) and no training accuracy for that batch.
        """
        return x, y

    # Model ------------------------------------------------------------------------------------------------
    @property
    def data_config(self) -> DataConfig | None:
        """How inputs must be prepared (from the zoo model's config), read by nlzoo's data modules."""
        config = getattr(self.model, "nlzoo_config", None)
        return config.data_config if config is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.hparams.multi_label:
            return F.binary_cross_entropy_with_logits(logits, target.float())
        if target.is_floating_point():  # soft targets from mix_batch, already smoothed
            return F.cross_entropy(logits, target)
        return F.cross_entropy(logits, target, label_smoothing=self.hparams.label_smoothing)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities: softmax, or per-class sigmoid for multi-label data."""
        logits = logits.float()
        return logits.sigmoid() if self.hparams.multi_label else logits.softmax(dim=-1)

    # Steps ------------------------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = self.mix_batch(batch[self.input_key], batch["label"])
        logits = self(x)
        loss = ensure_finite_loss(self.loss(logits, y), self)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(x))
        if self.train_top1 is not None and not y.is_floating_point():
            self.train_top1(logits.detach(), y)
            self.log("train/top1", self.train_top1, on_step=True, on_epoch=True, batch_size=len(x))
        self._log_skipped(batch, "train")
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: Batch, stage: str, metrics: Metric | MetricCollection) -> None:
        self._log_skipped(batch, stage)
        x = batch[self.input_key]
        if len(x) == 0:  # every sample of the batch was unreadable
            return
        logits = self(x)
        self.log(f"{stage}/loss", self.loss(logits, batch["label"]), batch_size=len(x), sync_dist=True)
        self.update_eval_metrics(metrics, self.scores(logits), batch)

    def _log_skipped(self, batch: Batch, stage: str) -> None:
        if "skipped" in batch:
            skipped = torch.as_tensor(batch["skipped"], device=self.device).sum().float()
            self.log(f"{stage}/skipped", skipped, on_step=False, on_epoch=True, reduce_fx="sum", sync_dist=True)
        self._skipped_inputs.setdefault(stage, []).extend(batch.get("skipped_videos", ()))

    def _report_skipped(self, stage: str) -> None:
        """One warning per epoch listing the inputs this process skipped, with the reason for each."""
        lines = self._skipped_inputs.pop(stage, [])
        if lines:
            shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else "")
            log.warning(
                "%s epoch %d: skipped %d unreadable inputs:\n  %s", stage, self.current_epoch, len(lines), shown
            )

    def on_train_epoch_end(self) -> None:
        self._report_skipped("train")

    def on_validation_epoch_end(self) -> None:
        self._log_eval(self.val_metrics, "val")
        self._report_skipped("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval(self.test_metrics, "test")
        self._report_skipped("test")

    def _log_eval(self, metrics: Metric | MetricCollection, stage: str) -> None:
        values = metrics.compute()  # gathered over all ranks, so equal everywhere
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, sync_dist=True, prog_bar=stage == "val")
        metrics.reset()

    # Optimisation -------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = param_groups(self.model, weight_decay=hp.weight_decay, decay_norm_and_bias=hp.decay_norm_and_bias)
        optimizer = build_optimizer(groups, name=hp.optimizer, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov)
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ConfigError("learning-rate schedules need a finite run: set trainer.max_epochs or trainer.max_steps")
        per_epoch = self._steps_per_epoch() if hp.warmup_epochs or hp.milestones else 0
        scheduler = build_scheduler(
            optimizer,
            total_steps=int(total),
            schedule=hp.schedule,
            warmup_steps=round(hp.warmup_epochs * per_epoch),
            warmup_start_factor=hp.warmup_start_factor,
            milestones=[round(m * per_epoch) for m in hp.milestones or ()],
            gamma=hp.gamma,
            min_factor=hp.min_lr_factor,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _steps_per_epoch(self) -> int:
        """Optimiser steps per epoch (to turn warm-up and milestones in epochs into steps)."""
        trainer = self.trainer
        if trainer.train_dataloader is None:
            trainer.fit_loop.setup_data()
        batches = trainer.num_training_batches
        if not math.isfinite(batches):
            raise ConfigError("warmup_epochs and milestones are in epochs, but the training data has no length")
        return math.ceil(batches / trainer.accumulate_grad_batches)

    # Frozen BN and exact resumes ----------------------------------------------------------------------------
    def _batch_norms(self) -> list[_BatchNorm]:
        return [m for m in self.model.modules() if isinstance(m, _BatchNorm)]

    def train(self, mode: bool = True) -> ClassificationTask:
        super().train(mode)
        if mode and self.hparams.freeze_bn:
            for module in self._batch_norms():
                module.eval()
        return self

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        record_data_config(self.model, datamodule)  # a saved model states the clips/crops it was trained on

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RNG_KEY] = capture_rng_state()
        save_data_config(self.model, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Applied when training resumes, after anything the restart itself draws (e.g. a sanity check).
        self._resume_rng = checkpoint.get(RNG_KEY)
        restore_data_config(self.model, checkpoint)

    def on_train_epoch_start(self) -> None:
        if self._resume_rng is not None:
            restore_rng_state(self._resume_rng)
            self._resume_rng = None


def _build_network(
    model: str | nn.Module, num_classes: int | None, pretrained: bool | str, model_args: dict[str, Any]
) -> nn.Module:
    if isinstance(model, str):
        head = {"num_classes": num_classes} if num_classes is not None else {}
        return load(model, pretrained=pretrained, **head, **model_args)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a registry name or an nn.Module; got {type(model).__name__}")
    if isinstance(pretrained, str) or model_args:
        raise ValueError("a pretrained tag and model_args apply to registry names; configure the instance directly")
    current = getattr(model, "num_classes", None)
    if current is None:
        raise ConfigError(f"{type(model).__name__} has no num_classes attribute; nlzoo tasks need a classifier")
    if num_classes is not None and current != num_classes:
        if not hasattr(model, "reset_classifier"):
            raise ConfigError(
                f"the model has {current} outputs but num_classes={num_classes}, and no reset_classifier() to change it"
            )
        log.info("re-initialising the classifier of %s: %d -> %d classes", type(model).__name__, current, num_classes)
        model.reset_classifier(num_classes)
    return model
