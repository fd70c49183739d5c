"""Each pose recipe parses and builds through LightningCLI; the CPU recipe trains for real (tiny)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pytorch_lightning.cli import LightningCLI

from nlzoo.cli import main
from nlzoo.data import CocoKeypointsDataModule, SyntheticPoseDataModule
from nlzoo.tasks import PoseEstimator

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "pose"
OFFLINE = ["--model.init_args.pretrained", "false"]  # the COCO recipes start from ImageNet weights on the Hub
ON_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "auto"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["nlzoo"])  # LightningCLI warns when args and sys.argv both look set


def _cli(args: list[str], *, run: bool = False) -> LightningCLI:
    return LightningCLI(
        model_class=None,
        datamodule_class=None,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,
        run=run,
        args=args,
    )


@pytest.mark.parametrize("model", ["simplebaseline_r50", "simplebaseline_r50_nl"])
def test_coco_recipes_build_the_paper_comparison(model: str) -> None:
    cli = _cli(["--config", str(RECIPES / f"{model}_coco.yaml"), *OFFLINE, *ON_CPU])
    assert isinstance(cli.model, PoseEstimator) and cli.model.hparams.model == model
    assert isinstance(cli.datamodule, CocoKeypointsDataModule)
    assert cli.datamodule.codec.input_size == (256, 192) and cli.datamodule.codec.heatmap_size == (64, 48)
    assert cli.trainer.max_epochs == 140 and list(cli.model.hparams.lr_steps) == [90, 120]


def test_the_synthetic_recipe_trains_evaluates_and_its_checkpoint_predicts(tmp_path: Path, capsys) -> None:
    tiny = [
        "--data.init_args.root", str(tmp_path / "data"),
        "--data.init_args.num_train_images", "8",
        "--data.init_args.num_val_images", "2",
        "--data.init_args.input_size", "[64, 64]",
        "--data.init_args.batch_size", "4",
        "--data.init_args.num_workers", "0",
        "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "3",
        "--trainer.check_val_every_n_epoch", "1",
        "--trainer.logger", "false",
        "--trainer.enable_checkpointing", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    cli = _cli(["fit", "--config", str(RECIPES / "simplebaseline_r18_synthetic.yaml"), *tiny], run=True)
    assert isinstance(cli.datamodule, SyntheticPoseDataModule)
    assert cli.trainer.global_step == 3
    metrics = cli.trainer.callback_metrics
    assert {"train/loss", "train/pck", "val/loss", "val/AP", "val/AP50", "val/APm", "val/AR"} <= set(metrics)
    assert 0.0 <= float(metrics["val/AP"]) <= 1.0 and float(metrics["train/loss"]) > 0
    checkpoint = tmp_path / "last.ckpt"
    cli.trainer.save_checkpoint(checkpoint)
    restored = PoseEstimator.load_from_checkpoint(checkpoint, pretrained=False)
    assert restored.model.nlzoo_config.data_config.crop_size == (64, 64)  # what it was trained on
    image = tmp_path / "data" / "images" / "val" / "000001.png"
    assert main(["predict-image", str(image), "--model", str(checkpoint), "--out", str(tmp_path / "p.png")]) == 0
    assert len(json.loads(capsys.readouterr().out.splitlines()[-2])["keypoints"]) == 17
