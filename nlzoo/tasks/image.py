"""``ImageClassifier``: image classification, with optional mixup / cutmix through timm's ``Mixup``.

Everything else (network from a registry name or instance, SGD/AdamW with warm-up + cosine, label smoothing,
top-1/top-5 with torchmetrics, skipped-image counts) is :class:`~nlzoo.tasks.classification.ClassificationTask`.
Batches are dicts with ``image`` (B, C, H, W), ``label`` (B,) and ``skipped``, as
:class:`~nlzoo.data.ImageFolderDataModule` yields them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from timm.data import Mixup
from torch import nn

from ..errors import ConfigError
from .classification import ClassificationTask


class ImageClassifier(ClassificationTask):
    """Image classification; see :class:`ClassificationTask` for the optimiser, schedule and model arguments.

    With ``mixup_alpha`` or ``cutmix_alpha`` > 0, training batches are mixed by :class:`timm.data.Mixup`
    (per batch, which needs an even batch size). Targets then become soft, label smoothing is applied by
    the mixer, the loss is cross-entropy against the soft targets and no training accuracy is logged.

    Args:
        model: registry name (``"resnet50_nl"``, ``"resnet50_nl.tv_in1k"``, ``"timm:convnext_tiny"``, a folder)
            or a network instance.
        num_classes: classifier outputs (linked from the data module by the CLI).
        mixup_alpha: Beta(alpha, alpha) parameter of mixup; 0 disables it (timm's ImageNet recipes: 0.1-0.8).
        cutmix_alpha: Beta parameter of cutmix; 0 disables it (timm's recipes: 1.0).
        mixup_prob: probability that a batch is mixed at all.
        mixup_switch_prob: with both enabled, probability of cutmix instead of mixup for a batch.
        **kwargs: :class:`ClassificationTask` arguments (``pretrained``, ``optimizer``, ``lr``, ``schedule``,
            ``warmup_epochs``, ``label_smoothing``, ``model_args``, ...).

    Example:
        >>> task = ImageClassifier("resnet18_nl", pretrained=False, num_classes=10, mixup_alpha=0.2)
        >>> task.data_config.crop_size
        (224, 224)
    """

    input_key: ClassVar[str] = "image"

    def __init__(
        self,
        model: str | nn.Module,
        num_classes: int | None = None,
        *,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mixup_prob: float = 1.0,
        mixup_switch_prob: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, num_classes, **kwargs)
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if value < 0:
                raise ConfigError(f"{name} must be >= 0; got {value}")
        for name, value in (("mixup_prob", mixup_prob), ("mixup_switch_prob", mixup_switch_prob)):
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} must be in [0, 1]; got {value}")
        self.mixer: Mixup | None = None
        if mixup_alpha > 0 or cutmix_alpha > 0:
            if self.hparams.multi_label:
                raise ConfigError(
                    "mixup/cutmix need single-label data; set mixup_alpha=cutmix_alpha=0 with multi_label"
                )
            self.mixer = Mixup(
                mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha,
                prob=mixup_prob,
                switch_prob=mixup_switch_prob,
                label_smoothing=self.hparams.label_smoothing,
                num_classes=self.num_classes,
            )

    def mix_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup / cutmix of a training batch (soft float targets), or the batch as it is."""
        if self.mixer is None:
            return x, y
        if len(x) % 2:
            raise ConfigError(
                f"mixup/cutmix pair each image with another one of its batch and need an even batch size; got "
                f"{len(x)} (use an even data.batch_size; the training loader drops the last incomplete batch)"
            )
        return self.mixer(x, y)
