"""checkpoints.md is generated from the registry, says only what the tags record, and is kept in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

import nlzoo
from nlzoo.zoo import PretrainedTag, get_entry, registry
from nlzoo.zoo.checkpoints import REGENERATE, render_checkpoints
from nlzoo.zoo.families.sources import HubWeights

ROOT = Path(__file__).parents[2]
COMMIT, SHA = "c" * 40, "5" * 64


@pytest.fixture
def entries(monkeypatch: pytest.MonkeyPatch) -> list[registry.ModelEntry]:
    """Two temporary registry entries: one tag of each status, and an architecture without tags."""
    base = get_entry("c2d_r18_nl")
    tags = (
        PretrainedTag("kinetics400", "Kinetics-400", 400, "available", HubWeights("nlzoo/c2d", COMMIT, SHA),
                      metrics={"top1": 71.2}, verified="top-1 71.0 on our Kinetics-400 val copy"),
        PretrainedTag("charades", "Charades", 157, "convertible", origin_url="https://example.invalid/c.pkl",
                      origin_format="pyslowfast", license="CC-BY-NC 4.0"),
        PretrainedTag("ava", "AVA", 80, "unavailable", notes="the authors never released these"),
    )  # fmt: skip
    tagged = registry.ModelEntry("tmp_tagged", base.builder, base.task, base.data_config, {t.tag: t for t in tags})
    bare = registry.ModelEntry("tmp_bare", base.builder, base.task, base.data_config)
    for entry in (tagged, bare):
        monkeypatch.setitem(registry._MODELS, entry.name, entry)
    return [tagged, bare]


def test_committed_checkpoints_md_matches_the_registry() -> None:
    committed = (ROOT / "checkpoints.md").read_text()
    assert committed == render_checkpoints(), f"checkpoints.md is out of date with the registry: run `{REGENERATE}`"


def test_rows_state_each_tag_honestly(entries: list[registry.ModelEntry]) -> None:
    text = render_checkpoints(entries)
    assert "2 architectures, 3 pretrained tags. 1 of them published by nlzoo on the Hub." in text
    published, convertible, unavailable, bare = [line for line in text.splitlines() if line.startswith("| `tmp_")]
    assert f"| `nlzoo/c2d` @ `{COMMIT}` | `{SHA}` | published |" in published
    assert "| top1 71.2 | top-1 71.0 on our Kinetics-400 val copy |" in published
    assert "converted from the pyslowfast checkpoint https://example.invalid/c.pkl; license CC-BY-NC 4.0" in convertible
    assert convertible.endswith("| — | — | ready to convert |") and unavailable.endswith("| not available |")
    assert bare.startswith("| `tmp_bare` | — |") and bare.endswith("| no pretrained weights |")


def test_unpublished_tags_say_so_when_loaded(entries: list[registry.ModelEntry], tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"tmp_tagged\.charades: .*nlzoo does not host these weights yet"
    ) as err:
        nlzoo.load("tmp_tagged.charades", cache_dir=str(tmp_path), local_files_only=True)
    assert "https://example.invalid/c.pkl (license: CC-BY-NC 4.0)" in str(err.value)
    assert "nlzoo convert --model tmp_tagged" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no weights are available .the authors never released these"):
        nlzoo.load("tmp_tagged.ava")
