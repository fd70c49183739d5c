"""Each detection recipe parses and builds through nlzoo's Lightning CLI (num_classes linked from the data)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nlzoo.cli.lightning import build_cli
from nlzoo.data.synthetic_detection import SyntheticDetectionSpec, ensure_synthetic_detection
from nlzoo.layers import nonlocal_blocks
from nlzoo.tasks.detection import Detector

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "detection"
ON_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "auto"]


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["nlzoo"])


@pytest.fixture(scope="module")
def coco_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for data/coco (the recipes read the category list when they are built)."""
    spec = SyntheticDetectionSpec(num_train=2, num_val=2, size=(64, 64))
    return ensure_synthetic_detection(tmp_path_factory.mktemp("recipes") / "coco", spec)


def _paths(root: Path, prefix: str) -> list[str]:
    return [
        "--data.init_args.train_annotations", str(root / "annotations" / f"{prefix}_train.json"),
        "--data.init_args.train_images", str(root / "images" / "train"),
        "--data.init_args.val_annotations", str(root / "annotations" / f"{prefix}_val.json"),
        "--data.init_args.val_images", str(root / "images" / "val"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("recipe", "blocks", "prefix", "classes"),
    [
        ("maskrcnn_r50_fpn_coco", 0, "instances", 5),
        ("maskrcnn_r50_fpn_nl_coco", 1, "instances", 5),
        ("maskrcnn_r50_fpn_nl_finetune", 1, "instances", 5),
        ("keypointrcnn_r101_fpn_coco", 0, "person_keypoints", 2),
        ("keypointrcnn_r101_fpn_nl_head_coco", 4, "person_keypoints", 2),
        ("keypointrcnn_r101_fpn_nl_head_backbone_coco", 5, "person_keypoints", 2),
    ],
)
def test_paper_recipes_build(coco_like: Path, recipe: str, blocks: int, prefix: str, classes: int) -> None:
    args = ["--config", str(RECIPES / f"{recipe}.yaml"), "--model.init_args.pretrained", "false"]
    cli = build_cli([*args, *ON_CPU, *_paths(coco_like, prefix)], run=False)
    assert isinstance(cli.model, Detector)
    assert len(list(nonlocal_blocks(cli.model.model))) == blocks
    assert cli.model.model.num_classes == classes  # linked from the data's categories
    assert cli.model.hparams.base_batch_size == 16 and cli.model.hparams.lr == 0.02
    assert cli.datamodule.batch_size == (4 if "finetune" in recipe else 2)


def test_synthetic_recipe_builds_on_cpu(tmp_path: Path) -> None:
    args = ["--config", str(RECIPES / "maskrcnn_r18_fpn_nl_synthetic.yaml"), "--data.init_args.root", str(tmp_path)]
    cli = build_cli(args, run=False)
    assert cli.model.model.num_classes == 5 and cli.model.hparams.model == "maskrcnn_r18_fpn_nl"
    assert cli.trainer.max_steps == 300
