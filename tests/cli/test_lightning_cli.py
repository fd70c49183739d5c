from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import yaml
from pytorch_lightning import Trainer

import nlzoo
from nlzoo.cli import main

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes/video/synthetic_c2d_r18_nl.yaml"
RECIPES = sorted(REPO.glob("recipes/**/*.yaml"))


@pytest.fixture(autouse=True)
def _command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if run as ``nlzoo ...``: the arguments come from main(), not from pytest's command line."""
    monkeypatch.setattr("sys.argv", ["nlzoo"])


def _tiny_overrides(tmp_path: Path) -> list[str]:
    """Shrink the synthetic recipe to seconds: 32 px, 4 frames, a handful of videos."""
    return [
        "--data.init_args.root", str(tmp_path / "data"),
        "--data.init_args.num_train", "4",
        "--data.init_args.num_val", "2",
        "--data.init_args.num_test", "2",
        "--data.init_args.video_frames", "8",
        "--data.init_args.num_workers", "0",
        "--data.init_args.batch_size", "2",
        "--data.init_args.data_config", '{"num_frames": 4, "sampling_rate": 2, "crop_size": [32, 32], '
        '"train_scale": [32, 36], "test_scale": 32, "test_clips": 2, "test_crops": 1}',
        "--model.init_args.model", "c2d_r18",
        "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ]  # fmt: skip


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(REPO)) for r in RECIPES])
def test_every_recipe_parses(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(recipe), "--print_config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"].startswith("nlzoo.tasks.")
    assert config["data"]["class_path"].startswith("nlzoo.data.")


def test_print_config_resolves_interpolation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(RECIPE), "--print_config"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]
    assert data["data_config"]["test_scale"] == data["data_config"]["crop_size"][0] == 32


def test_fit_then_test_from_the_recipe(tmp_path: Path) -> None:
    assert main(["fit", "--config", str(RECIPE), *_tiny_overrides(tmp_path)]) == 0
    assert (tmp_path / "data/meta.json").is_file()  # prepare_data generated the videos
    (run,) = (tmp_path / "run/lightning_logs").iterdir()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["init_args"]["model"] == "c2d_r18"
    assert saved["data"]["init_args"]["data_config"]["crop_size"] == [32, 32]
    last = run / "checkpoints/last.ckpt"
    hparams = torch.load(last, weights_only=True)["hyper_parameters"]
    assert hparams["num_classes"] == 2 and hparams["label_names"] == ["different_colour", "same_colour"]  # linked

    assert main(["test", "--config", str(RECIPE), *_tiny_overrides(tmp_path), "--ckpt_path", str(last)]) == 0

    # The trained network exports as a model folder that states the clips it was trained on, not the defaults.
    assert main(["export", str(last), str(tmp_path / "folder")]) == 0
    exported = nlzoo.load(tmp_path / "folder")
    cfg = exported.nlzoo_config
    assert (cfg.data_config.num_frames, cfg.data_config.sampling_rate, cfg.data_config.crop_size) == (4, 2, (32, 32))
    assert cfg.label_names == ["different_colour", "same_colour"]
    weights = torch.load(last, weights_only=True)["state_dict"]
    torch.testing.assert_close(exported.fc.weight, weights["model.fc.weight"])


def test_best_and_last_in_a_new_command_find_the_earlier_runs_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lightning alone raised for 'best' and, for 'last', tested the untrained network with exit code 0."""
    assert main(["fit", "--config", str(RECIPE), *_tiny_overrides(tmp_path), "--trainer.max_epochs", "2"]) == 0
    (checkpoints,) = (tmp_path / "run").glob("**/checkpoints")
    recorded = torch.load(checkpoints / "last.ckpt", weights_only=True)["callbacks"]
    (best,) = [Path(s["best_model_path"]) for s in recorded.values() if s.get("best_model_path")]
    asked = []
    real = Trainer.test

    @functools.wraps(real)  # the CLI reads the method's signature for its options
    def spy(self: Trainer, *args: object, **kwargs: object) -> object:
        asked.append(kwargs["ckpt_path"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "test", spy)
    for key in ("last", "best"):
        assert main(["test", "--config", str(RECIPE), *_tiny_overrides(tmp_path), "--ckpt_path", key]) == 0
    assert [Path(p).resolve() for p in asked] == [(checkpoints / "last.ckpt").resolve(), best.resolve()]

    # A run folder without the asked-for file: one line naming a file that works, and it does.
    other = tmp_path / "other/lightning_logs/version_0/checkpoints"
    other.mkdir(parents=True)
    (other / "epoch=0-step=2.ckpt").write_bytes(best.read_bytes())
    overrides = [*_tiny_overrides(tmp_path), "--trainer.default_root_dir", str(tmp_path / "other")]
    capsys.readouterr()
    assert main(["test", "--config", str(RECIPE), *overrides, "--ckpt_path", "last"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--ckpt_path last: no last checkpoint of an earlier run" in line
    advice = line.split("e.g. ")[1].split()
    assert main(["test", "--config", str(RECIPE), *overrides, *advice]) == 0
    capsys.readouterr()
    assert main(["test", "--config", str(RECIPE), *_tiny_overrides(tmp_path / "none"), "--ckpt_path", "best"]) == 2
    assert "pass a checkpoint file" in capsys.readouterr().err


def test_export_refuses_a_checkpoint_without_a_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "plain.ckpt")
    assert main(["export", str(tmp_path / "plain.ckpt"), str(tmp_path / "out")]) == 2
    assert "does not say which task trained it" in capsys.readouterr().err


def test_user_errors_print_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train.txt").write_text("clip.mp4 zero\n")
    args = [
        "--model",
        "nlzoo.tasks.VideoClassifier",
        "--model.model",
        "c2d_r18",
        "--data",
        "nlzoo.data.VideoDataModule",
    ]
    assert main(["fit", *args, "--data.train", str(tmp_path / "train.txt"), "--trainer.max_epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"nlzoo fit: error: {tmp_path / 'train.txt'}:1: label 'zero' is not a class index")
    assert main(["fit", *args, "--model.lr", "fast"]) != 0  # a type error, reported by the parser
