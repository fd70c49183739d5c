"""``nlzoo models``: the table's rows and numbers, filters, and the top-level help."""

from __future__ import annotations

import re

import pytest

import nlzoo
from nlzoo.cli import COMMANDS, LIGHTNING_COMMANDS, main
from nlzoo.cli.models import matching_models
from nlzoo.zoo.complexity import measure_complexity


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # Rich wraps to the terminal's width; keep each row on one line


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) >= 6 and re.fullmatch(r"[a-z0-9_]+", cells[0]) and cells[2].endswith("M"):
            rows[cells[0]] = cells
    return rows


def test_table_lists_matching_models_with_their_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "c2d_r18"]) == 0
    rows = _rows(capsys.readouterr().out)
    family = {f"c2d_r18_{block}" for block in ("gc", "dnl", "ann_apnb", "criss_cross", "efficient")}
    assert set(rows) == {"c2d_r18", "c2d_r18_nl", "c2d_r18_nl10", *family}
    size = measure_complexity("c2d_r18_nl")
    _, task, params, gflops, blocks, shape, tags = rows["c2d_r18_nl"][:7]
    assert task == "video" and blocks == "2" and shape == "8x224x224"
    assert params == f"{size.params / 1e6:.1f}M" and gflops == f"{size.gflops:.1f}"
    assert tags.startswith("imagenet")


def test_convertible_tags_are_marked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "i3d_r50"]) == 0
    out = capsys.readouterr().out
    assert "kinetics400 (convert)" in out  # pytorchvideo's I3D: published, not hosted by nlzoo


def test_filters() -> None:
    assert matching_models(["c2d_*_nl"], pretrained=False, task=None) == [
        "c2d_r18_nl",
        "c2d_r34_nl",
        "c2d_r50_nl",
        "c2d_r101_nl",
    ]
    with_weights = matching_models([], pretrained=True, task=None)
    assert with_weights and all(
        any(t.status == "available" for t in nlzoo.model_info(n).tags.values()) for n in with_weights
    )
    assert matching_models([], pretrained=False, task="video-classification") == nlzoo.list_models(
        task="video-classification"
    )


def test_no_match_is_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "resnet9000"]) == 2
    err = capsys.readouterr().err
    assert "no model matches 'resnet9000'" in err and "run `nlzoo models`" in err and "Traceback" not in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in (*COMMANDS, *LIGHTNING_COMMANDS):
        assert command in out
    assert {"models", "predict-video", "explain", "demo", "convert"} <= set(COMMANDS)


def test_piped_output_keeps_every_tag_whole(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A pipe or a file has no width: Rich's default 80 columns cut the tags ("kinetics40…") and squeezed the
    task, NL and tags columns of the whole zoo to nothing."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models", "i3d_r50_nl", "keypointrcnn_r18"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "kinetics400_vnl32x4_affine (convert)" in out
    assert "│ keypointrcnn_r18_fpn_nl_head_backbone │ keypoints │" in out


@pytest.mark.parametrize("width", [80, 40])
def test_a_narrow_terminal_wraps_names_and_tags_without_cutting_them(
    width: int, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """80 columns: names and tags wrap inside the table; 40, narrower than the table can be: its lines are longer
    than the terminal (which wraps them) instead of Rich cropping the last columns away."""
    import rich.console

    class Terminal(rich.console.Console):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{"width": width, "force_terminal": True, "color_system": None, **kwargs})

    monkeypatch.setattr(rich.console, "Console", Terminal)
    assert main(["models", "i3d_r50_nl", "keypointrcnn_r18"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split("│") for line in lines if line.count("│") == 8]
    assert "…" not in "".join(lines) and max(len(line) for line in lines) == max(width, len(lines[1]))
    header = next(line for line in lines if " name " in line)
    assert all(f" {column} " in header for column in ("task", "params", "GFLOPs", "NL", "input", "tags"))
    names, tags = ("".join(row[i].strip() for row in rows) for i in (1, 7))
    assert "keypointrcnn_r18_fpn_nl_head_backbone" in names  # wrapped across lines, every character kept
    assert "kinetics400_vnl32x4_affine(convert)" in tags
