"""The Detector task: a tiny real fit + COCO evaluation, keypoint AP, DDP de-duplication, LR scaling, mismatches."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

import nlzoo
from nlzoo.cli import main
from nlzoo.data.synthetic_detection import SyntheticDetectionDataModule
from nlzoo.tasks.detection import Detector, UniqueImageMeanAveragePrecision

# CPU-sized: ResNet-18 trained from scratch (trainable BN), 64-pixel inputs and few RoIs.
TINY = {
    "min_size": 64,
    "max_size": 64,
    "backbone_norm": "batch",
    "trainable_backbone_layers": 5,
    "rpn_post_nms_top_n_train": 64,
    "rpn_post_nms_top_n_test": 32,
    "box_batch_size_per_image": 16,
    "box_detections_per_img": 5,
}


def _data(root: Path, targets: str = "masks") -> SyntheticDetectionDataModule:
    return SyntheticDetectionDataModule(
        str(root),
        num_train_images=6,
        num_val_images=2,
        image_size=(64, 64),
        targets=targets,
        batch_size=2,
        num_workers=0,
    )


def _trainer(**kwargs: object) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


@pytest.mark.slow
def test_mask_rcnn_with_a_nonlocal_block_trains_and_reports_box_and_mask_ap(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    task = Detector(
        "maskrcnn_r18_fpn_nl",
        pretrained=False,
        num_classes=data.num_classes,
        label_names=data.label_names,
        model_args=TINY,
        lr=0.01,
        base_batch_size=2,
        warmup_steps=1,
        milestones=[10],
    )
    block = task.model.backbone.body.get_submodule("layer3.0_nonlocal")
    before = block.norm.weight.clone()
    trainer = _trainer(max_steps=2, limit_val_batches=1, val_check_interval=2)
    trainer.fit(task, data)
    assert not torch.equal(block.norm.weight, before)  # the block learns
    metrics = trainer.callback_metrics
    for key in ("train/loss_mask", "val/bbox_map", "val/segm_map", "val/bbox_map_50"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert task.model.nlzoo_config.label_names[4] == "person"


@pytest.mark.slow
def test_keypoint_rcnn_validation_reports_keypoint_ap(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", targets="keypoints")
    task = Detector(
        "keypointrcnn_r18_fpn_nl_head",
        pretrained=False,
        num_classes=data.num_classes,
        model_args={**TINY, "box_score_thresh": 0.0},
    )
    trainer = _trainer(limit_val_batches=1)
    (results,) = trainer.validate(task, data)
    assert 0.0 <= results["val/keypoint_AP"] <= 1.0 and "val/bbox_map" in results


def _box(x: float) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor([[x, x, x + 10, x + 10]]), "labels": torch.tensor([1])}


def test_an_image_repeated_by_a_padding_sampler_counts_once() -> None:
    preds = [{**_box(0), "scores": torch.tensor([0.9])}, {**_box(20), "scores": torch.tensor([0.8])}]
    truths = [_box(0), _box(50)]
    once = UniqueImageMeanAveragePrecision()
    once.update(preds, truths, image_ids=torch.tensor([1, 2]))
    padded = UniqueImageMeanAveragePrecision()
    padded.update(preds, truths, image_ids=torch.tensor([1, 2]))
    padded.update(preds[1:], truths[1:], image_ids=torch.tensor([2]))  # image 2 again: a wrong detection twice
    plain = UniqueImageMeanAveragePrecision()
    plain.update(preds + preds[1:], truths + truths[1:])  # without ids every entry counts
    assert padded.compute()["map"] == once.compute()["map"] == pytest.approx(0.5, abs=0.01)
    assert plain.compute()["map_50"] != once.compute()["map_50"]


def test_learning_rate_and_milestones_follow_the_global_batch() -> None:
    task = Detector(
        "fasterrcnn_r18_fpn", pretrained=False, num_classes=3, model_args=TINY, lr=0.02, milestones=[60_000, 80_000]
    )
    task._trainer = SimpleNamespace(  # 4 images x 2 devices x 1 = 8 of the paper's 16
        datamodule=SimpleNamespace(batch_size=4), world_size=2, accumulate_grad_batches=1, train_dataloader=None
    )
    config = task.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert task.global_batch_size() == 8
    assert optimizer.defaults["lr"] == pytest.approx(0.01)
    assert scheduler.lr_lambdas[0](0) == pytest.approx(1 / 3)  # Detectron's warm-up factor
    assert scheduler.lr_lambdas[0](119_999) == pytest.approx(1.0) and scheduler.lr_lambdas[0](120_000) == 0.1
    assert scheduler.lr_lambdas[0](160_000) == pytest.approx(0.01)


def test_data_with_more_classes_than_the_model_is_one_clear_error(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    task = Detector("fasterrcnn_r18_fpn", pretrained=False, num_classes=3, model_args=TINY)
    task._trainer = SimpleNamespace(datamodule=data)
    with pytest.raises(ValueError, match=r"category ids up to 4 .* set model.num_classes=5"):
        task.setup("fit")
    with pytest.raises(ValueError, match="2 label names for 3 classes"):
        Detector("fasterrcnn_r18_fpn", pretrained=False, num_classes=3, label_names=["a", "b"], model_args=TINY)


def test_a_fit_checkpoint_exports_as_a_model_folder(tmp_path: Path) -> None:
    """``nlzoo export`` (and predict-image's .ckpt path) accept the Detector: it is one of nlzoo's tasks."""
    names = ["__background__", "circle", "square", "triangle", "person"]
    task = Detector("maskrcnn_r18_fpn_nl", pretrained=False, num_classes=5, label_names=names, model_args=TINY)
    hparams = {**task.hparams, "_class_path": "nlzoo.tasks.detection.Detector"}  # as `nlzoo fit` stores it
    state = {"state_dict": task.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": pl.__version__}
    torch.save(state, tmp_path / "last.ckpt")
    assert main(["export", str(tmp_path / "last.ckpt"), str(tmp_path / "folder")]) == 0
    model = nlzoo.load(str(tmp_path / "folder"))
    assert model.nlzoo_config.label_names == names and model.num_classes == 5
    loaded, trained = model.state_dict(), task.model.state_dict()
    assert loaded.keys() == trained.keys() and all(torch.equal(loaded[k], trained[k]) for k in trained)
