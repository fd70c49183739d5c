"""Where user input enters the zoo: names vs paths, ``pretrained``, ``num_classes`` and ``config.json``.

Every refusal is one :class:`~nlzoo.errors.NlzooError` line naming what was wrong; nothing loads silently wrong.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlzoo
from nlzoo.errors import ChecksumMismatchError, ConfigError, NlzooError, UnknownNameError
from nlzoo.zoo import create_model, get_entry
from nlzoo.zoo.config import ModelConfig
from nlzoo.zoo.folder import read_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=3)
    torch.nn.init.normal_(model.fc.weight)
    return nlzoo.save_pretrained(model, tmp_path_factory.mktemp("saved") / "model")


def test_the_default_tag_is_the_papers_weights() -> None:
    for arch, tag in [("i3d_r50_nl", "kinetics400"), ("i3d_r50", "kinetics400"), ("c2d_r50_nl", "kinetics400_vnl8x8")]:
        entry = get_entry(arch)
        assert entry.default_tag == tag and entry.tags[tag].dataset == "Kinetics-400"
    assert get_entry("c2d_r18_nl").default_tag == "imagenet"  # no paper weights for R18: ImageNet inflated


def test_offline_load_says_the_weights_are_not_cached_and_how_to_get_a_random_network(tmp_path: Path) -> None:
    with pytest.raises(NlzooError, match=r"not cached.*pretrained=False \(or nlzoo.create_model\(name\)\)") as err:
        nlzoo.load("i3d_r18_nl", num_classes=3, cache_dir=tmp_path, local_files_only=True)
    assert "\n" not in str(err.value).split(". ", 1)[0]
    # following the advice gives a network, randomly initialised
    model = nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=3)
    assert model.nlzoo_config.pretrained_tag is None and model.num_classes == 3
    alias = create_model("i3d_r18_nl", num_classes=3)
    assert alias.nlzoo_config.pretrained_tag is None and type(alias) is type(model)
    assert nlzoo.create_model is create_model


def test_a_tag_with_pretrained_false_keeps_the_tags_settings_with_random_weights() -> None:
    model = create_model("i3d_r50.kinetics400_mmaction2", num_classes=2)
    assert model.nlzoo_config.data_config.num_frames == 32 and model.nlzoo_config.pretrained_tag is None
    with pytest.raises(ConfigError, match="names tag 'imagenet' but pretrained='kinetics400'"):
        nlzoo.load("i3d_r18.imagenet", pretrained="kinetics400")
    with pytest.raises(ConfigError, match="pretrained must be True, False or a tag name"):
        nlzoo.load("i3d_r18", pretrained="")


def test_a_folder_named_like_a_model_never_wins(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    os.symlink(folder, "c2d_r18", target_is_directory=True)  # a folder named like a registry model
    os.symlink(folder, "mine", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        registry = nlzoo.load("c2d_r18", pretrained=False, num_classes=5)
    assert registry.nlzoo_config.architecture == "c2d_r18" and registry.num_classes == 5
    assert "the folder of that name here is ignored (load it as './c2d_r18')" in caplog.text
    assert nlzoo.load("./c2d_r18").nlzoo_config.architecture == "c2d_r18_nl"  # the advice works
    assert nlzoo.load("local-dir:c2d_r18").num_classes == 3
    with pytest.raises(UnknownNameError, match=r"unknown model 'mine'.*load the folder as './mine'"):
        nlzoo.load("mine")
    assert nlzoo.load("./mine").num_classes == 3
    assert nlzoo.load(Path("mine")).num_classes == 3  # a Path object is always a path
    with pytest.raises(ConfigError, match="holds its own weights; pretrained=False applies to registry names"):
        nlzoo.load("./mine", pretrained=False)


@pytest.mark.parametrize("bad", [-3, 0, "10", 10.5, True, [3]])
def test_num_classes_is_checked_where_it_enters(bad: Any, folder: Path) -> None:
    for call in (
        lambda: nlzoo.load("c2d_r18", pretrained=False, num_classes=bad),
        lambda: create_model("c2d_r18", num_classes=bad),
        lambda: nlzoo.load(folder, num_classes=bad),
    ):
        with pytest.raises(ConfigError, match=r"^num_classes must be a whole number >= 1 .*; got "):
            call()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3), st.booleans()))
def test_num_classes_property(value: Any) -> None:
    with pytest.raises(ConfigError, match="num_classes must be a whole number >= 1"):
        nlzoo.load("c2d_r18", pretrained=False, num_classes=value)


def _with(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()
BAD_FIELDS = [
    ("label_names", ["a", "b"], "label_names has 2 names but num_classes is 3"),
    ("label_names", [1, 2, 3], "label_names must be a list of strings"),
    ("data_config.std", [0.2, 0.0, 0.2], r"data_config.std\[1\] must be > 0"),
    ("data_config.std", [0.2, -1, 0.2], r"data_config.std\[1\] must be > 0"),
    ("data_config.std", [0.2, 0.2], "data_config.std must be a list of 3 values"),
    ("data_config.mean", [0.4, "x", 0.4], r"data_config.mean\[1\] must be a finite number"),
    ("data_config.crop_size", "224", "data_config.crop_size must be a list of 2 values"),
    ("data_config.crop_size", [224.0, 224], r"data_config.crop_size\[0\] must be a whole number >= 1"),
    ("data_config.crop_size", [224, -1], r"data_config.crop_size\[1\] must be a whole number >= 1"),
    ("data_config.num_frames", 0, "data_config.num_frames must be a whole number >= 1 or null"),
    ("data_config.sampling_rate", "8", "data_config.sampling_rate must be a whole number >= 1 or null"),
    ("data_config.train_scale", [320, 256], r"data_config.train_scale must be \[low, high\] with low <= high"),
    ("data_config.crop_pct", 1.5, r"data_config.crop_pct must be in \(0, 1\]"),
    ("data_config.interpolation", "cubic", "data_config.interpolation must be one of"),
    ("data_config.frames", 8, r"unknown data_config keys \['frames'\]"),
    ("data_config", 3, "data_config must be an object"),
    ("num_classes", -3, "num_classes must be a whole number >= 1"),
    ("num_classes", "3", "num_classes must be a whole number >= 1"),
    ("num_classes", _DELETE, r"missing field\(s\) num_classes"),
    ("task", "segmentation", "task must be one of"),
    ("architecture", 7, "architecture must be a model name"),
    ("model_args", [1], "model_args must be an object"),
    ("weights_sha256", "abc", "weights_sha256 must be 64 lowercase hex digits"),
    ("format_version", 99, "has format_version 99; upgrade nlzoo"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v, _ in BAD_FIELDS])
def test_every_config_field_is_validated_when_a_folder_is_read(
    folder: Path, tmp_path: Path, field: str, value: Any, message: str
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(_with(config, field, value)))
    with pytest.raises(ConfigError, match=message) as err:
        nlzoo.load(copy)
    assert str(err.value).startswith(str(copy / "config.json")) and "\n" not in str(err.value)


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["num_classes", "task", "label_names", *[f"data_config.{k}" for k in ("crop_size", "std")]]),
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-5, 500) | st.floats(allow_nan=True) | st.text(max_size=4),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=6,
    ),
)
def test_any_config_value_is_loaded_or_refused_with_an_nlzoo_error(field: str, value: Any) -> None:
    base = {
        "architecture": "c2d_r18",
        "task": "video-classification",
        "num_classes": 3,
        "data_config": {"crop_size": [224, 224], "std": [0.2, 0.2, 0.2]},
    }
    with contextlib.suppress(NlzooError):  # any other exception type would be a bug surfacing as a traceback
        ModelConfig.from_dict(_with(base, field, value))


def test_altered_weights_are_refused_on_every_folder_load(folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_text((folder / "config.json").read_text())
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    weights["fc.bias"] = weights["fc.bias"] + 1  # same keys and shapes: only the digest can tell
    safetensors.torch.save_file(weights, copy / "model.safetensors")
    with pytest.raises(ChecksumMismatchError, match="has sha256 .* but config.json records"):
        nlzoo.load(copy)
    with pytest.raises(ChecksumMismatchError):
        read_folder(copy)
    config = json.loads((copy / "config.json").read_text())
    del config["weights_sha256"]  # a hand-made folder that records no digest still loads
    (copy / "config.json").write_text(json.dumps(config))
    assert nlzoo.load(copy).num_classes == 3
