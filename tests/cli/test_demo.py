"""``nlzoo demo``: a seconds-long run of the whole demo (not its accuracy: benchmarks/demo_seeds.py owns that),
and the demo recipe kept equal to the demo's settings."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import nlzoo
from nlzoo.cli import main
from nlzoo.cli.demo import DemoSettings
from nlzoo.cli.lightning import build_cli
from nlzoo.data.synthetic_common import LABEL_NAMES

RECIPE = Path(__file__).parents[2] / "recipes" / "video" / "synthetic_c2d_r18_nl.yaml"


def test_quick_demo_trains_both_models_and_says_where_everything_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for model in ("c2d_r18_nl", "c2d_r18"):
        assert re.search(rf"│ {model}\s+│\s+[02]\s+│\s+[\d.]+M\s+│\s+\d+\.\d%", out), out
        folder = tmp_path / "models" / model
        config = nlzoo.load(folder).nlzoo_config
        assert config.label_names == list(LABEL_NAMES)
        # the clips it was trained on (4 frames every 4th, 32 px), not the architecture's 8x8 at 224
        assert (config.data_config.num_frames, config.data_config.crop_size) == (4, (32, 32))
        assert str(folder) in out
        assert (tmp_path / "runs" / model / "seed0" / "metrics.csv").is_file()
    png = tmp_path / "attention" / "00000.layer2.1_nonlocal.png"
    assert png.is_file() and png.with_suffix(".gif").is_file()
    assert str(png) in out and str(tmp_path / "data") in out
    assert "nlzoo predict-video" in out and "nlzoo explain" in out
    assert (tmp_path / "data" / "test.txt").read_text().count(".mp4") == 4


def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err


def test_the_demo_recipe_is_the_demos_non_local_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "argv", ["nlzoo"])
    monkeypatch.chdir(tmp_path)
    cli = build_cli(["--config", str(RECIPE)], run=False)
    settings = DemoSettings()
    expected_data = settings.data_module(Path("unused"), seed=0)
    expected_task = settings.task(settings.nonlocal_model)
    for key in ("model", "optimizer", "lr", "weight_decay", "schedule", "warmup_epochs", "label_names"):
        assert cli.model.hparams[key] == expected_task.hparams[key], key
    data = cli.datamodule
    assert data.spec == expected_data.spec
    assert data.data_config_overrides == expected_data.data_config_overrides
    assert (data.batch_size, data.val_views) == (expected_data.batch_size, expected_data.val_views)
    assert cli.trainer.max_epochs == settings.epochs
    assert cli.trainer.precision == settings.precision
