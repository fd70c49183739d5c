"""The image recipes through ``nlzoo fit``: every one parses, and the synthetic one trains for real."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from nlzoo.cli import main

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes/image").glob("*.yaml"))
SYNTHETIC = REPO / "recipes/image/synthetic_resnet18_nl.yaml"


@pytest.fixture(autouse=True)
def _command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if run as ``nlzoo ...``: the arguments come from main(), not from pytest's command line."""
    monkeypatch.setattr("sys.argv", ["nlzoo"])


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.name for r in RECIPES])
def test_image_recipe_prints_its_config(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(recipe), "--print_config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "nlzoo.tasks.ImageClassifier"
    assert config["data"]["class_path"].startswith("nlzoo.data.")
    assert "Expected" in recipe.read_text()  # each recipe states what result to expect (or that it is unknown)


def test_synthetic_recipe_trains(tmp_path: Path) -> None:
    overrides = [
        "--data.init_args.root", str(tmp_path / "data"),
        "--data.init_args.num_train", "16",
        "--data.init_args.num_val", "8",
        "--data.init_args.num_test", "0",
        "--data.init_args.image_size", "[32, 32]",
        "--data.init_args.batch_size", "8",
        "--data.init_args.num_workers", "0",
        "--trainer.max_epochs", "1",
        "--trainer.log_every_n_steps", "1",
        "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    assert main(["fit", "--config", str(SYNTHETIC), *overrides]) == 0
    (run,) = (tmp_path / "run/lightning_logs").iterdir()
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["init_args"]["image_size"] == [32, 32]
    checkpoint = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2 and checkpoint["hyper_parameters"]["num_classes"] == 2  # linked
    weights = checkpoint["state_dict"]
    assert "model.layer2.1_nonlocal.conv_theta.weight" in weights
    assert weights["model.layer2.1_nonlocal.norm.weight"].abs().sum() > 0  # the block learnt (it starts at 0)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [float(r["val/top1"]) for r in rows if r.get("val/top1")]  # validated
    assert {r["val/skipped"] for r in rows if r.get("val/skipped")} == {"0.0"}
