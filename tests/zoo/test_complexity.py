"""Parameters and FLOPs of registered models, counted on the meta device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nlzoo
from nlzoo.models.flops import count_flops
from nlzoo.zoo import complexity
from nlzoo.zoo.complexity import measure_complexity, zoo_complexities


def test_params_and_blocks_match_the_real_model() -> None:
    size = measure_complexity("c2d_r18_nl")
    real = nlzoo.load("c2d_r18_nl", pretrained=False)
    assert size.params == sum(p.numel() for p in real.parameters())
    assert size.nonlocal_blocks == 2 and size.input_shape == (3, 8, 224, 224)
    baseline = measure_complexity("c2d_r18")
    assert size.params > baseline.params and size.flops - baseline.flops >= size.nonlocal_flops > 0


def test_flops_match_a_real_forward_at_the_same_input() -> None:
    x = torch.randn(1, 3, 4, 64, 64)
    real = nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=7).eval()
    with torch.no_grad():
        expected = count_flops(real, lambda: real(x)).total
    assert measure_complexity("i3d_r18_nl", input_shape=(3, 4, 64, 64), num_classes=7).flops == expected


def test_a_tag_brings_its_architecture_and_input() -> None:
    default = measure_complexity("i3d_r50_nl")
    paper = measure_complexity("i3d_r50_nl.kinetics400_vnl32x2")  # 32x2 clips, time-strided stem
    assert paper.input_shape == (3, 32, 224, 224) and default.input_shape == (3, 8, 224, 224)
    assert paper.params == default.params
    assert paper.flops > default.flops


def test_unknown_names_say_what_exists() -> None:
    with pytest.raises(KeyError, match="Did you mean 'c2d_r18_nl'"):
        measure_complexity("c2d_r18_nll")


def zoo_complexity(name: str) -> complexity.Complexity:
    ((_, size),) = zoo_complexities([name])
    return size


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A fresh cache folder; records which names are really counted."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    names: list[str] = []
    real = complexity.measure_complexity
    monkeypatch.setattr(complexity, "measure_complexity", lambda name: names.append(name) or real(name))
    return names


def test_the_zoo_listing_counts_each_model_once_per_source(counted: list[str], tmp_path: Path, monkeypatch) -> None:
    first = zoo_complexity("c2d_r18_nl")
    assert first == measure_complexity("c2d_r18_nl") and counted == ["c2d_r18_nl"]
    assert zoo_complexity("c2d_r18_nl") == first and zoo_complexity("c2d_r18") and counted == ["c2d_r18_nl", "c2d_r18"]
    monkeypatch.setattr(complexity, "_package_stamp", lambda: "another nlzoo")  # an edited source file
    assert zoo_complexity("c2d_r18_nl") == first and counted == ["c2d_r18_nl", "c2d_r18", "c2d_r18_nl"]
    cache = json.loads((tmp_path / "nlzoo" / "complexity.json").read_text())
    assert cache["stamp"] == "another nlzoo" and set(cache["models"]) == {"c2d_r18_nl"}  # the stale ones are gone


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"stamp": 1, "models": 2}', "STAMP_WITH_BAD_ENTRY"])
def test_a_damaged_cache_is_counted_again(counted: list[str], tmp_path: Path, damage: str) -> None:
    path = tmp_path / "nlzoo" / "complexity.json"
    path.parent.mkdir()
    if damage == "STAMP_WITH_BAD_ENTRY":
        damage = json.dumps({"stamp": complexity._package_stamp(), "models": {"c2d_r18": {"params": "x"}}})
    path.write_text(damage)
    assert zoo_complexity("c2d_r18") == measure_complexity("c2d_r18") and counted == ["c2d_r18"]
    assert "c2d_r18" in json.loads(path.read_text())["models"]


def test_a_listing_reads_and_writes_the_cache_once_and_an_interrupted_one_keeps_its_counts(
    counted: list[str], tmp_path: Path, monkeypatch
) -> None:
    writes = []
    real_write = complexity.atomic_write_text
    monkeypatch.setattr(complexity, "atomic_write_text", lambda *a: writes.append(a) or real_write(*a))
    listing = zoo_complexities(["c2d_r18", "c2d_r18_nl", "i3d_r18"])
    assert next(listing)[0] == "c2d_r18" and next(listing)[0] == "c2d_r18_nl"
    listing.close()  # Ctrl-C in the middle of the table
    assert len(writes) == 1 and counted == ["c2d_r18", "c2d_r18_nl"]
    names = ["c2d_r18", "c2d_r18_nl", "i3d_r18"]
    assert [name for name, _ in zoo_complexities(names)] == names
    assert counted == ["c2d_r18", "c2d_r18_nl", "i3d_r18"] and len(writes) == 2
    assert list(zoo_complexities(["c2d_r18", "i3d_r18"])) and len(writes) == 2  # all cached: nothing written


def test_an_unwritable_cache_still_answers(counted: list[str], tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # its folder cannot be made
    assert zoo_complexity("c2d_r18") == zoo_complexity("c2d_r18") and counted == ["c2d_r18", "c2d_r18"]


def test_the_source_stamp_changes_with_any_source_file_and_torch(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not source")
    assert complexity._package_stamp() == complexity._source_stamp(complexity._PACKAGE)
    first = complexity._source_stamp(tmp_path)
    (tmp_path / "notes.txt").write_text("changed, still not source")
    assert complexity._source_stamp(tmp_path) == first
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    edited = complexity._source_stamp(tmp_path)
    assert edited != first
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert complexity._source_stamp(tmp_path) not in (first, edited)
