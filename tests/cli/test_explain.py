"""``nlzoo explain`` on a synthetic MP4 with a tiny model: the PNG and GIF it writes, and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from nlzoo.cli import main
from tests.cli.tiny import write_model, write_videos


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("explain")
    write_model(root / "model")
    return root / "model", write_videos(root / "data", count=1)[0]


def test_writes_a_figure_and_an_animation_of_the_expected_size(setup, tmp_path, capsys) -> None:
    folder, video = setup
    argv = ["explain", str(video), "--model", str(folder), "--out", str(tmp_path), "--num-queries", "3"]
    assert main([*argv, "--panel-height", "64", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    png, gif = tmp_path / f"{video.stem}.layer2.1_nonlocal.png", tmp_path / f"{video.stem}.layer2.1_nonlocal.gif"
    assert f"wrote {png} and {gif}" in out
    # the block sees 2 time steps of the 4-frame, 32 x 32 clip: 2 panels of 64 x 64 (gap 6), arrows + 3 heat rows
    assert Image.open(png).size == (2 * 64 + 6, 4 * 64 + 3 * 6)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4 and animation.size == (64, 64)
    assert len(re.findall(r"\d+,\d+,\d+", out)) == 3


def test_given_queries_are_drawn_at_their_cells(setup, tmp_path, capsys) -> None:
    folder, video = setup
    argv = ["explain", str(video), "--model", str(folder), "--out", str(tmp_path), "--queries", "3,31,0", "0,5,9"]
    assert main([*argv, "--block", "layer3.1_nonlocal", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    # layer3.1 sees a 2 x 2 x 2 grid of the 4 x 32 x 32 clip: cells are 2 frames x 16 x 16 pixels, shown by centre
    assert "block layer3.1_nonlocal; queries (t,y,x in the model's input): 3,24,8, 1,8,8" in out
    assert (tmp_path / f"{video.stem}.layer3.1_nonlocal.png").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--block", "layer4.1_nonlocal"], "no non-local block 'layer4.1_nonlocal'"),
        (["--queries", "9,0,0"], "outside the input of shape (4, 32, 32)"),
        (["--queries", "1,2"], "a query needs 3 coordinates t,y,x"),
    ],
)
def test_errors_are_one_line(setup, tmp_path, extra, message, capsys) -> None:
    folder, video = setup
    assert main(["explain", str(video), "--model", str(folder), "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nlzoo explain: error:") and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: d.mkdir() or d, [], "is a directory; give one video or image file"),
        (lambda d: d, [], "no such file; check the path"),
        (None, ["--top-k", "0"], "argument --top-k: must be a whole number >= 1; got '0'"),
        (None, ["--num-queries", "x"], "argument --num-queries: must be a whole number >= 1"),
        (None, ["--panel-height", "4"], "--panel-height must be >= 8; got 4"),
        (None, ["--out", "{video}/sub"], "cannot create or write this folder ("),
        (None, ["--out", "{video}"], "is a file; give a folder"),
    ],
)
def test_what_the_user_typed_is_checked_before_the_model_loads(
    setup, tmp_path, make, extra, message, capsys, monkeypatch
) -> None:
    folder, video = setup
    import nlzoo.inference.inputs as inputs

    monkeypatch.setattr(inputs, "load", lambda name: pytest.fail("the model was loaded"))
    source = make(tmp_path / "input.mp4") if make else video
    extra = [arg.replace("{video}", str(video)) for arg in extra]
    try:
        code = main(["explain", str(source), "--model", str(folder), "--out", str(tmp_path / "o"), *extra])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err  # argparse prints its usage first


def test_an_animated_gif_is_a_video_for_a_video_model(setup, tmp_path) -> None:
    folder, _ = setup
    import av
    import numpy as np

    frames = [np.full((40, 48, 3), 30 * k, np.uint8) for k in range(6)]
    Image.fromarray(frames[0]).save(
        tmp_path / "moving.gif", save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]], duration=100
    )
    with av.open(str(tmp_path / "moving.gif")) as container:
        assert container.streams.video[0].frames in (0, 6)  # FFmpeg reads it as a video
    argv = ["explain", str(tmp_path / "moving.gif"), "--model", str(folder), "--out", str(tmp_path / "o")]
    assert main([*argv, "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "moving.layer2.1_nonlocal.gif").is_file()


def test_an_image_for_a_video_model_is_refused(setup, tmp_path, capsys) -> None:
    folder, _ = setup
    Image.new("RGB", (40, 40)).save(tmp_path / "frame.png")
    assert main(["explain", str(tmp_path / "frame.png"), "--model", str(folder), "--out", str(tmp_path)]) == 2
    assert "is a video model: give a video file" in capsys.readouterr().err


def test_an_image_through_a_2d_model_gives_one_column_and_no_animation(tmp_path) -> None:
    import numpy as np
    import torch

    from nlzoo.inference.attention import write_attention_maps
    from nlzoo.models import create_timm_nonlocal
    from nlzoo.zoo import DataConfig, ModelConfig

    model = create_timm_nonlocal("resnet18", nonlocal_after=["layer3.0"], num_classes=3).eval()
    config = DataConfig(crop_size=(64, 64), crop_pct=0.8)  # short side 80, centre 64 x 64 crop
    model.nlzoo_config = ModelConfig("resnet18_nl", "image-classification", 3, config)
    pixels = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.jpg")
    with torch.no_grad():
        result = write_attention_maps(model, tmp_path / "photo.jpg", tmp_path, num_queries=2, panel_height=80)
    assert result.gif is None and result.block == "layer3.0_nonlocal"
    assert Image.open(result.png).size == (80, 3 * 80 + 2 * 6)
    assert all(len(q) == 2 and min(q) >= 0 and max(q) < 64 for q in result.queries)


def test_a_pose_model_explains_the_person_crop_that_predict_image_feeds_it(tmp_path, monkeypatch) -> None:
    """The whole image as one person box (aspect kept, padded), not a centre crop that would cut the person."""
    import numpy as np
    import torch

    import nlzoo
    from nlzoo.inference import attention
    from nlzoo.inference.pose import person_crops, whole_image_box

    model = nlzoo.load("simplebaseline_r18_nl", pretrained=False)
    config = model.nlzoo_config.data_config.replace(crop_size=(96, 64))
    model.nlzoo_config.data_config = config
    pixels = np.random.default_rng(0).integers(0, 255, (50, 120, 3), dtype=np.uint8)  # wide: a crop would cut it
    Image.fromarray(pixels).save(tmp_path / "person.png")
    real_draw = attention.draw_attention
    seen = []
    monkeypatch.setattr(
        attention, "draw_attention", lambda model, x, *a, **k: seen.append(x) or real_draw(model, x, *a, **k)
    )
    with torch.no_grad():
        result = attention.write_attention_maps(model.eval(), tmp_path / "person.png", tmp_path, num_queries=1)
    image = Image.open(tmp_path / "person.png").convert("RGB")
    assert torch.equal(seen[0], person_crops(image, whole_image_box(image), config)[0])
    assert result.png.is_file() and result.gif is None
