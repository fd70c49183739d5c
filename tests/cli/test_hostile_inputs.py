"""Careless and hostile input to the CLI: one line and exit 2 for what a user can cause, a traceback for bugs.

One regression test per case of issue 14 owned here (the zoo's own cases live in tests/zoo).
"""

from __future__ import annotations

import argparse
import struct
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from nlzoo.cli import COMMANDS, build_parser, main
from nlzoo.errors import ConfigError, LimitError, NlzooError
from tests.cli.tiny import TINY_DATA, write_model, write_videos


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    write_model(root / "model")
    return root / "model", write_videos(root / "data", count=1)[0]


def _one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"nlzoo {command}: error: "), err
    return err[0]


def test_only_nlzoo_errors_become_one_line(monkeypatch, capsys) -> None:
    from nlzoo.cli import models

    def user_error(args: argparse.Namespace) -> int:
        raise ConfigError("bad input\nspread over lines")

    monkeypatch.setattr(models, "run", user_error)
    assert main(["models"]) == 2
    assert _one_error_line(capsys, "models").endswith("bad input spread over lines")
    monkeypatch.setenv("NLZOO_TRACEBACK", "1")  # the trace, when asked for
    with pytest.raises(ConfigError):
        main(["models"])

    def ctrl_c(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "run", ctrl_c)
    assert main(["models"]) == 130
    assert capsys.readouterr().err.strip() == "nlzoo models: interrupted"

    def bug(args: argparse.Namespace) -> int:
        raise KeyError("a bug")

    monkeypatch.delenv("NLZOO_TRACEBACK")
    monkeypatch.setattr(models, "run", bug)
    with pytest.raises(KeyError):  # a bug keeps its traceback (exit 1 from the console script)
        main(["models"])


def _required(command: str) -> list[argparse.Action]:
    """The arguments ``nlzoo COMMAND`` cannot run without."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[command]._actions if a.required and a.nargs not in ("*", "?")]


WITH_REQUIRED = [name for name in sorted(COMMANDS) if _required(name)]


def _only_required(command: str) -> list[str]:
    """``command`` with a value for each required argument, naming nothing that exists (first choice if any)."""
    argv = [command]
    for action in _required(command):
        value = str(action.choices[0]) if action.choices else f"missing-{action.dest}"
        argv += [value] if not action.option_strings else [action.option_strings[-1], value]
    return argv


@pytest.mark.parametrize("command", WITH_REQUIRED)
def test_every_command_without_its_arguments_is_an_argparse_error(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main([command])
    assert done.value.code == 2 and "required" in capsys.readouterr().err


@pytest.mark.parametrize("command", WITH_REQUIRED)
def test_every_command_with_only_required_arguments_fails_in_one_line(command, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_TOKEN", "hf_unused")  # push must fail on the folder, before any Hub call
    assert main(_only_required(command)) == 2
    _one_error_line(capsys, command)


def test_the_commands_with_required_arguments_are_found() -> None:
    assert {"convert", "export", "push", "predict-video", "predict-image", "explain"} <= set(WITH_REQUIRED)
    assert _only_required("convert")[:2] == ["convert", "--model"]  # --source is detected from the file


@pytest.mark.slow
def test_models_without_a_pattern_lists_the_whole_zoo(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "timm_nonlocal" in out and "i3d_r50_nl" in out


def test_predict_image_never_runs_untrained_weights(tmp_path, capsys) -> None:
    Image.new("RGB", (64, 48)).save(tmp_path / "person.png")
    assert main(["predict-image", str(tmp_path / "person.png"), "--model", "simplebaseline_r18"]) == 2
    assert "head" in _one_error_line(capsys, "predict-image")  # its tag is a backbone for fine-tuning
    assert main(["predict-image", str(tmp_path / "person.png"), "--model", "simplebaseline_r18.imagenet"]) == 2
    assert "predictions would be noise" in _one_error_line(capsys, "predict-image")


@pytest.mark.parametrize("box", [["1000", "1000", "0", "-5"], ["0", "0", "nan", "10"], ["0", "0", "10", "0"]])
def test_a_degenerate_person_box_is_one_line(box, tmp_path, capsys) -> None:
    Image.new("RGB", (64, 48)).save(tmp_path / "person.png")
    assert main(["predict-image", str(tmp_path / "person.png"), "--model", "x", "--box", *box]) == 2
    assert "is not a person box" in _one_error_line(capsys, "predict-image")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds none: what a decompression bomb looks like to open()."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 100_000])  # over nlzoo's limit; over Pillow's own as well
def test_a_decompression_bomb_is_refused_before_decoding(side, tmp_path, capsys) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(side, side))
    assert main(["predict-image", str(bomb), "--model", "simplebaseline_r18"]) == 2
    line = _one_error_line(capsys, "predict-image")
    assert "pixels" in line and str(bomb) in line


def test_image_pixel_limit_follows_its_variable(tmp_path, monkeypatch) -> None:
    from nlzoo.data.image_dataset import read_image

    Image.new("RGB", (64, 48)).save(tmp_path / "small.png")
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(LimitError, match="64x48 pixels is 3,072, over the limit of 1,000; .*NLZOO_MAX_IMAGE_PIXELS"):
        read_image(str(tmp_path / "small.png"))
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "4000")  # following the advice
    assert read_image(str(tmp_path / "small.png")).size == (64, 48)


def test_explain_panel_height_is_bounded_before_drawing(setup, tmp_path, monkeypatch, capsys) -> None:
    folder, video = setup
    argv = ["explain", str(video), "--model", str(folder), "--out", str(tmp_path), "--device", "cpu"]
    assert main([*argv, "--panel-height", "100000"]) == 2
    assert "--panel-height is 100,000, over the limit of 2,048" in _one_error_line(capsys, "explain")
    assert not list(tmp_path.glob("*.png"))
    assert main([*argv, "--num-queries", "1000"]) == 2
    assert "NLZOO_MAX_QUERIES" in _one_error_line(capsys, "explain")
    monkeypatch.setenv("NLZOO_MAX_FIGURE_PIXELS", "5000")  # the whole figure is bounded too
    assert main([*argv, "--panel-height", "64"]) == 2
    assert "the figure (" in _one_error_line(capsys, "explain")
    monkeypatch.setenv("NLZOO_MAX_FIGURE_PIXELS", "100000")  # following the advice
    assert main([*argv, "--panel-height", "64", "--num-queries", "1"]) == 0


def test_views_and_decoded_frames_are_bounded_before_decoding(monkeypatch) -> None:
    from nlzoo.inference.inputs import read_video_views

    missing = Path("no-such-video.mp4")  # the limits fire before the file is even opened
    with pytest.raises(LimitError, match="1000x1000 views is 1,000,000, over the limit of 300"):
        read_video_views(missing, TINY_DATA, num_clips=1000, num_crops=1000)
    monkeypatch.setenv("NLZOO_MAX_VIEWS", "5000")
    with pytest.raises(LimitError, match=r"2000 clips of 4 frames is 8,000, over the limit of 4,096"):
        read_video_views(missing, TINY_DATA.replace(test_clips=1), num_clips=2000, num_crops=1)


def test_a_misspelled_recipe_key_prints_the_cause_and_the_closest_key(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["nlzoo"])
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("trainer:\n  max_epoch: 3\n")
    assert main(["fit", "--config", str(recipe)]) == 2
    line = _one_error_line(capsys, "fit")
    assert "unknown key 'trainer.max_epoch'" in line and "Did you mean 'trainer.max_epochs'?" in line
    recipe.write_text(recipe.read_text().replace("max_epoch:", "max_epochs:"))  # following the advice
    assert main(["fit", "--config", str(recipe), "--print_config"]) == 0
    assert "max_epochs: 3" in capsys.readouterr().out
    recipe.write_text(
        "model:\n  class_path: nlzoo.tasks.VideoClassifier\n  init_args:\n    model: c2d_r18\n    lrr: 0.1\n"
    )
    assert main(["fit", "--config", str(recipe)]) == 2
    assert "has no argument 'lrr' (model.init_args.lrr). Did you mean 'lr'?" in _one_error_line(capsys, "fit")


def test_limit_variables_must_be_positive_integers(monkeypatch) -> None:
    from nlzoo.limits import check_limit

    monkeypatch.setenv("NLZOO_MAX_VIEWS", "lots")
    with pytest.raises(NlzooError, match="NLZOO_MAX_VIEWS='lots' must be a positive integer"):
        check_limit("views", 1)


@pytest.mark.parametrize("device", ["cdua", "cuda:99"])
def test_an_unusable_device_is_one_line_before_loading(device, setup, capsys) -> None:
    folder, video = setup
    argv = ["predict-video", str(video), "--model", str(folder), "--views", "1x1"]
    assert main([*argv, "--device", device]) == 2
    assert "use --device cpu" in _one_error_line(capsys, "predict-video")
    assert main([*argv, "--device", "cpu"]) == 0  # following the advice


def test_recipe_values_refused_by_a_class_or_lightning_are_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["nlzoo"])
    recipe = str(Path(__file__).resolve().parents[2] / "recipes/video/synthetic_c2d_r18_nl.yaml")
    base = ["--config", recipe, "--data.init_args.root", str(tmp_path / "data")]
    assert main(["fit", *base, "--data.init_args.batch_size", "0"]) == 2  # the data module's own check
    assert "batch sizes must be >= 1; got 0" in _one_error_line(capsys, "fit")
    assert main(["fit", *base, "--trainer.max_epochs", "-3"]) == 2  # Lightning's MisconfigurationException
    assert "max_epochs" in _one_error_line(capsys, "fit")
    assert main(["test", *base, "--ckpt_path", str(tmp_path / "none.ckpt")]) == 2
    assert "no such checkpoint file" in _one_error_line(capsys, "test")
    assert not (tmp_path / "data").exists()  # refused before any video was generated


class _RefusingDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> None:
        raise ConfigError("clip.mp4: label 7 is out of range\nfor 2 classes")


def test_an_error_from_a_dataloader_worker_is_its_own_message(capsys) -> None:
    from nlzoo.cli import report_user_error

    with pytest.raises(ConfigError) as caught:  # torch re-raises it with the worker's traceback in the message
        next(iter(torch.utils.data.DataLoader(_RefusingDataset(), num_workers=1)))
    assert "Original Traceback" in str(caught.value)
    assert report_user_error("fit", caught.value) == 2
    assert _one_error_line(capsys, "fit") == "nlzoo fit: error: clip.mp4: label 7 is out of range for 2 classes"


@pytest.mark.parametrize("side", [12_000, 14_000])  # Pillow warns past 89 M pixels and refuses past 179 M
def test_a_raised_pixel_limit_holds_past_pillows_own_and_nothing_leaks(side, tmp_path, monkeypatch) -> None:
    import warnings

    from nlzoo.data.image_dataset import read_image
    from nlzoo.errors import ImageDecodeError

    bomb = tmp_path / "big.png"
    bomb.write_bytes(_png_header(side, side))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(LimitError, match=rf"{side}x{side} pixels is .* over the limit of 64,000,000"):
            read_image(str(bomb))
    assert not caught  # Pillow's DecompressionBombWarning printed a source line above the one-line error
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", str(side * side))  # the user's own, higher limit counts
    with pytest.raises(ImageDecodeError, match="cannot load this image"):  # past every size check: no pixels
        read_image(str(bomb))
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "abc")
    with pytest.raises(ConfigError, match=r"^NLZOO_MAX_IMAGE_PIXELS='abc' must be a positive integer"):
        read_image(str(bomb))
