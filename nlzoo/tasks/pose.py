"""Top-down pose estimation as a LightningModule: heatmap regression, PCK while training, COCO OKS AP in eval.

The recipe is SimpleBaseline's (Xiao et al., ECCV 2018): MSE between predicted and Gaussian target heatmaps,
weighted per joint; Adam at lr 1e-3, divided by 10 at epochs 90 and 120 of 140; flip-test at evaluation.
Batches are the dicts of :class:`~nlzoo.data.coco_keypoints.TopDownPoseDataset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..errors import ConfigError
from ..models.memory_format import to_channels_last
from ..models.pose_codec import decode_to_image, flip_test
from ..models.skeleton import Skeleton, default_skeleton
from ..zoo import load
from .metrics.oks import CocoKeypointAP
from .metrics.pck import HeatmapPCK
from .model_config import record_data_config, restore_data_config, save_data_config
from .optim import ensure_finite_loss


def joints_mse_loss(heatmaps: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
    """SimpleBaseline's ``JointsMSELoss``: 0.5 x mean squared error of weighted heatmaps, over B, K, h, w."""
    weight = target_weight.float()[..., None, None]
    return 0.5 * ((heatmaps.float() - target.float()) * weight).pow(2).mean()


class PoseEstimator(pl.LightningModule):
    """Train and evaluate a top-down heatmap pose model.

    Args:
        model: a zoo name (``"simplebaseline_r50_nl"``, ``"simplebaseline_r50.imagenet"``) or a module mapping
            (B, 3, H, W) crops to (B, K, H/4, W/4) heatmaps.
        num_joints: joints K (the model's ``num_classes``).
        pretrained: for a zoo name: load its default tag (``True``, the default), the named tag (``"imagenet"``)
            or no weights (``False``: a randomly initialised network), as :func:`nlzoo.load`.
        model_args: architecture arguments for a zoo name (e.g. ``{"head_nonlocal_after": [0]}``).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        lr_steps: epochs at which the learning rate is multiplied by ``lr_factor``.
        lr_factor: the step decay factor.
        flip_test: average each crop's heatmaps with those of its mirror image at evaluation.
        pck_threshold: training accuracy threshold (fraction of heatmap size / 10).
        nms_threshold: OKS-NMS threshold of the evaluation (``None``: no NMS).
        in_vis_threshold: joint confidence counted in the instance score at evaluation.
        oks_sigmas: per-joint OKS sigmas; default the data's skeleton's (COCO's for COCO person joints).
        ground_truth: the evaluation's person_keypoints JSON; by default the data module's ``val_annotations``.
        channels_last: keep the network's weights in channels-last layout (faster convolutions: a
            simplebaseline_r50_nl training step at 256x192 ran 1.18x faster on a 2-core CPU, see
            :mod:`nlzoo.models.memory_format`); off gives PyTorch's default layout.

    Example:
        >>> task = PoseEstimator("simplebaseline_r18", pretrained=False, lr_steps=[2])
        >>> task(torch.randn(1, 3, 64, 64)).shape
        torch.Size([1, 17, 16, 16])
    """

    def __init__(
        self,
        model: str | nn.Module = "simplebaseline_r50",
        *,
        num_joints: int = 17,
        pretrained: bool | str = True,
        model_args: Mapping[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_steps: Sequence[int] = (90, 120),
        lr_factor: float = 0.1,
        flip_test: bool = True,
        pck_threshold: float = 0.5,
        nms_threshold: float | None = 0.9,
        in_vis_threshold: float = 0.2,
        oks_sigmas: Sequence[float] | None = None,
        ground_truth: str | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(model, str):
            self.save_hyperparameters()
            self.model = load(model, pretrained=pretrained, num_classes=num_joints, **dict(model_args or {}))
        else:
            self.save_hyperparameters(ignore=["model"])
            heads = getattr(model, "num_classes", num_joints)
            if heads != num_joints:
                raise ConfigError(f"the model predicts {heads} joints but num_joints={num_joints}")
            self.model = model
        if channels_last:
            to_channels_last(self.model)
        self.skeleton: Skeleton | None = default_skeleton(num_joints)
        self.train_pck = HeatmapPCK(pck_threshold)
        oks_args = {"nms_threshold": nms_threshold, "in_vis_threshold": in_vis_threshold}
        self.val_oks = CocoKeypointAP(ground_truth, sigmas=self._oks_sigmas(), **oks_args)
        self.test_oks = CocoKeypointAP(ground_truth, sigmas=self._oks_sigmas(), **oks_args)

    def _oks_sigmas(self) -> Sequence[float] | None:
        """The task's sigmas, else the skeleton's; ``None`` when neither is known (evaluation then fails)."""
        given = self.hparams.oks_sigmas
        return given if given is not None else (self.skeleton.oks_sigmas if self.skeleton else None)

    def setup(self, stage: str) -> None:
        """Take the skeleton, the evaluation ground truth and the crop settings from the data module."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        record_data_config(self.model, datamodule)  # saved with the model and checkpoints
        skeleton = getattr(datamodule, "skeleton", None)
        if isinstance(skeleton, Skeleton):
            if skeleton.num_joints != self.hparams.num_joints:
                raise ConfigError(
                    f"the data has {skeleton.num_joints} joints but the task predicts {self.hparams.num_joints}; "
                    f"set model.num_joints={skeleton.num_joints}"
                )
            self.skeleton = skeleton
            for metric in (self.val_oks, self.test_oks):
                metric.set_sigmas(self._oks_sigmas())
        ground_truth = getattr(datamodule, "val_annotations", None)
        if self.hparams.ground_truth is None and ground_truth is not None:
            self.val_oks.set_ground_truth(ground_truth)
            self.test_oks.set_ground_truth(ground_truth)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_data_config(self.model, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the crop size and normalisation the model was trained with."""
        restore_data_config(self.model, checkpoint)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        heatmaps = self.model(batch["image"])
        loss = ensure_finite_loss(joints_mse_loss(heatmaps, batch["target"], batch["target_weight"]), self)
        self.train_pck(heatmaps.detach(), batch["target"], batch["target_weight"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/pck", self.train_pck, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_oks, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_oks, "test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Image-space keypoints ``(B, K, 3)`` (x, y, confidence) with each crop's image id and box score."""
        return {"keypoints": self.predict_keypoints(batch), "image_id": batch["image_id"], "score": batch["score"]}

    def predict_keypoints(
        self, batch: dict[str, torch.Tensor], *, heatmaps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, K, 3) image-space keypoints of a batch of crops (with flip-test when enabled).

        ``heatmaps``: the model's output on ``batch["image"]`` if already computed.
        """
        images = batch["image"]
        heatmaps = self.model(images) if heatmaps is None else heatmaps
        if self.hparams.flip_test:
            if self.skeleton is None:
                raise ConfigError(
                    f"flip-test needs the left/right joint pairs, unknown for {self.hparams.num_joints} joints "
                    "without a data module skeleton; set flip_test=False"
                )
            heatmaps = flip_test(self.model, images, self.skeleton.flip_index, heatmaps=heatmaps)
        return decode_to_image(heatmaps, batch["crop_to_image"], images.shape[-2:])

    def _evaluate(self, batch: dict[str, torch.Tensor], metric: CocoKeypointAP, stage: str) -> None:
        heatmaps = self.model(batch["image"])
        if batch["target_weight"].any():  # ground-truth boxes; detection boxes have no targets
            loss = joints_mse_loss(heatmaps, batch["target"], batch["target_weight"])
            self.log(f"{stage}/loss", loss, on_epoch=True, sync_dist=True)
        keypoints = self.predict_keypoints(batch, heatmaps=heatmaps)
        metric.update(keypoints, batch["image_id"], batch["score"], areas=batch["area"], indices=batch["index"])

    def on_validation_epoch_end(self) -> None:
        self._log_oks(self.val_oks, "val")

    def on_test_epoch_end(self) -> None:
        self._log_oks(self.test_oks, "test")

    def _log_oks(self, metric: CocoKeypointAP, stage: str) -> None:
        if not metric.has_ground_truth:
            raise RuntimeError(
                "OKS AP needs the ground-truth keypoints: give the task ground_truth=... or use a data module "
                "with val_annotations"
            )
        results = metric.compute()
        self.log(f"{stage}/AP", results.pop("AP"), prog_bar=True)
        self.log_dict({f"{stage}/{name}": value for name, value in results.items()})
        metric.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(self.hparams.lr_steps), gamma=self.hparams.lr_factor
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
