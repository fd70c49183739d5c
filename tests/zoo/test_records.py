"""published.json: strict on load, atomic on save, and the registry's one way of flipping a tag to "published"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nlzoo.errors import ConfigError
from nlzoo.zoo import PretrainedTag, get_entry, records, registry
from nlzoo.zoo.checkpoints import render_checkpoints
from nlzoo.zoo.families.sources import HubWeights

COMMIT, SHA, SOURCE_SHA = "c" * 40, "5" * 64, "a" * 64
URL = "https://example.invalid/c2d.pkl"
GOOD = {"repo_id": "org/c2d_r18.k", "revision": COMMIT, "sha256": SHA, "source_url": URL, "source_sha256": SOURCE_SHA}


def _doc(**record: Any) -> dict[str, Any]:
    return {"format_version": 1, "published": {"c2d_r18.k": record}}


def test_the_committed_file_is_valid_and_names_registered_tags() -> None:
    published = records.load_records()
    registry.check_records_registered()
    for name, record in published.items():
        arch, tag = name.split(".")
        assert get_entry(arch).tags[tag].source == record.hub_weights()


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "published.json"
    saved = {"c2d_r18.k": records.ReleaseRecord(**GOOD)}
    records.save_records(saved, path)
    assert records.load_records(path) == saved
    assert json.loads(path.read_text())["published"]["c2d_r18.k"]["filename"] == "model.safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["published.json"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(**{**GOOD, "revision": "main"}), "revision must be the 40-hex commit the release made; got 'main'"),
        (_doc(**{**GOOD, "sha256": "5" * 63}), "sha256 must be 64 lowercase hex digits"),
        (_doc(**{**GOOD, "source_sha256": "A" * 64}), "source_sha256 must be 64 lowercase hex digits"),
        (_doc(**{**GOOD, "mirror": "x"}), "unknown keys ['mirror']"),
        (_doc(**{k: v for k, v in GOOD.items() if k != "sha256"}), "missing keys ['sha256']"),
        (_doc(**{**GOOD, "repo_id": "org"}), "repo_id must be 'org/name'"),
        (_doc(**{**GOOD, "source_url": "file:///tmp/x.pkl"}), "source_url must be the published file's URL"),
        (_doc(**{**GOOD, "sha256": 5}), "every field must be a non-empty string"),
        ({"format_version": True, "published": {}}, "format_version True is not 1"),
        ({"format_version": 1, "published": {"c2d_r18": GOOD}}, "names must be 'arch.tag'"),
        ({"published": {}}, "exactly 'format_version' and 'published'"),
    ],
)
def test_a_bad_record_is_refused_by_name(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="published.json") as err:
        records.parse_records(doc, where="published.json")
    assert message in str(err.value)


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "published.json").write_text("{")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        records.load_records(tmp_path / "published.json")


def test_registering_a_tag_with_a_record_publishes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    record = records.ReleaseRecord(**{**GOOD, "repo_id": "org/tmp_released.k"})
    monkeypatch.setattr(records, "registered_records", lambda: {"tmp_released.k": record})
    base = get_entry("c2d_r18")
    tag = PretrainedTag("k", "Kinetics-400", 400, "convertible", origin_url=URL, origin_format="caffe2")

    @registry.register_model(task=base.task, data_config=base.data_config, tags=[tag])
    def tmp_released(**kwargs: Any) -> Any:
        return base.builder(**kwargs)

    published = get_entry("tmp_released").tags["k"]
    assert published.status == "available" and published.source == HubWeights("org/tmp_released.k", COMMIT, SHA)
    assert published.origin_sha256 == SOURCE_SHA and published.origin_url == URL
    (row,) = [line for line in render_checkpoints([get_entry("tmp_released")]).splitlines() if "tmp_released" in line]
    assert row.endswith(f"| `org/tmp_released.k` @ `{COMMIT}` | `{SHA}` | published |")
    assert f"converted from the caffe2 checkpoint {URL}" in row

    monkeypatch.setattr(records, "registered_records", lambda: {"tmp_released.k": record, "tmp_gone.k": record})
    with pytest.raises(ConfigError, match="records for tags that are not registered: tmp_gone.k"):
        registry.check_records_registered()


def test_a_record_of_another_source_file_is_refused() -> None:
    tag = PretrainedTag("k", "Kinetics-400", 400, "convertible", origin_url="https://example.invalid/new.pkl")
    with pytest.raises(ConfigError, match="was released from https://example.invalid/c2d.pkl, but the tag now names"):
        records.published_tag("c2d_r18.k", tag, records.ReleaseRecord(**GOOD))
    other_file = PretrainedTag("k", "K", 4, "convertible", origin_url=URL, origin_sha256="b" * 64)
    with pytest.raises(ConfigError, match="release it again"):
        records.published_tag("c2d_r18.k", other_file, records.ReleaseRecord(**GOOD))
