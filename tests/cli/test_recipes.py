"""Every recipe under recipes/ (any task, found by glob) parses through the Lightning CLI, so none rots.

``--print_config`` resolves a recipe the way ``nlzoo fit`` does (class paths, argument names and types,
omegaconf interpolation) without building anything. The video recipes are also held to their
conventions: a header saying what they reproduce and what to expect, the global batch and the linear
learning-rate scaling rule, and num_classes linked from the data rather than written down.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from nlzoo.cli.lightning import build_cli
from nlzoo.zoo import DataConfig

RECIPES = sorted((Path(__file__).parents[2] / "recipes").rglob("*.yaml"))
VIDEO = [r for r in RECIPES if r.parent.name == "video"]


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_recipes_are_found() -> None:
    assert len(VIDEO) >= 8, [_name(r) for r in VIDEO]


@pytest.mark.parametrize("recipe", RECIPES, ids=_name)
def test_recipe_parses_through_the_cli(
    recipe: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["nlzoo"])  # LightningCLI warns when pytest's own arguments are there too
    with pytest.raises(SystemExit) as done:
        build_cli(["fit", "--config", str(recipe), "--print_config"])
    printed = capsys.readouterr()
    assert done.value.code in (0, None), printed.err
    resolved = yaml.safe_load(printed.out)
    assert resolved["model"]["class_path"] and resolved["data"]["class_path"]
    assert "${" not in printed.out, "an interpolation was left unresolved"
    data_config = resolved["data"]["init_args"].get("data_config") or {}
    unknown = set(data_config) - set(DataConfig.__dataclass_fields__)
    assert not unknown, f"unknown data_config keys {unknown}"


@pytest.mark.parametrize("recipe", VIDEO, ids=_name)
def test_video_recipe_states_its_result_batch_and_scaling(recipe: Path) -> None:
    text = recipe.read_text()
    header = text[: text.index("\nseed_everything")].lower()
    assert "expected" in header
    assert "global batch" in header and "linear" in header, "state the global batch and the lr scaling rule"
    assert "nlzoo fit" in header, "show the command that runs it"
    config = yaml.safe_load(text)
    assert "num_classes" not in config["model"].get("init_args", {}), "num_classes is linked from the data"
