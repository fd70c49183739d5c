"""The registry's tags for published Kinetics-400 checkpoints: complete, honest, and usable by convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nlzoo
from nlzoo.zoo import convert_checkpoint, get_entry, list_models
from nlzoo.zoo.converters import SOURCES
from nlzoo.zoo.converters.safe_pickle import load_pickle

from .layouts import randomise, write_caffe2


def _convertible() -> list[tuple[str, str]]:
    return [
        (n, t.tag)
        for n in list_models()
        for t in get_entry(n).tags.values()
        if t.status == "convertible" and t.dataset == "Kinetics-400"
    ]


def test_the_published_checkpoints_are_registered() -> None:
    names = {f"{n}.{t}" for n, t in _convertible()}
    assert {
        "i3d_r50_nl.kinetics400",  # PySlowFast model zoo I3D_NLN_8x8_R50.pkl
        "i3d_r50_nl.kinetics400_vnl8x8",
        "i3d_r50_nl.kinetics400_vnl32x2",
        "c2d_r50_nl.kinetics400_vnl8x8",
        "i3d_r50_nl.kinetics400_mmaction2_dot",
        "i3d_r50_nl.kinetics400_mmaction2_embedded",
        "i3d_r50_nl.kinetics400_mmaction2_gaussian",
        "i3d_r50.kinetics400",  # pytorchvideo
        "c2d_r50.kinetics400",
        "i3d_r50_nl.kinetics400_vnl32x4_affine",  # the authors' frozen-BN long-clip nets
        "i3d_r50_nl.kinetics400_vnl128x1_affine",
        "i3d_r50.kinetics400_vnl32x4_affine",
        "i3d_r50.kinetics400_vnl128x1_affine",
    } <= names
    assert len(names) == 19


@pytest.mark.parametrize(("arch", "tag"), _convertible())
def test_every_convertible_tag_is_complete(arch: str, tag: str) -> None:
    t = get_entry(arch).tag(tag)
    assert t.dataset == "Kinetics-400" and t.num_classes == 400
    assert t.origin_url and t.origin_url.startswith("https://") and t.origin_format in SOURCES
    assert t.license in ("cc-by-nc-4.0", "apache-2.0")
    assert set(t.metrics) == {"top1", "top5"} and 60 < t.metrics["top1"] < t.metrics["top5"] < 100
    assert t.verified.startswith("key layout")
    assert t.label_names is not None and len(set(t.label_names)) == 400
    get_entry(arch).builder(**t.model_args, num_classes=t.num_classes)  # the settings are valid arguments


def test_kinetics_labels_are_in_the_sources_index_order() -> None:
    labels = get_entry("i3d_r50_nl").tag("kinetics400").label_names
    assert labels is not None
    # Indices from video-nonlocal-net process_data/kinetics/classids.json.
    assert (labels[0], labels[208], labels[209], labels[399]) == (
        "abseiling",
        "passing American football (in game)",
        "passing American football (not in game)",
        "zumba",
    )


def test_loading_a_convertible_tag_offline_explains_how_to_convert(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"I3D_NLN_8x8_R50\.pkl.*nlzoo convert --model i3d_r50_nl.kinetics400"):
        nlzoo.load("i3d_r50_nl.kinetics400", cache_dir=str(tmp_path), local_files_only=True)


def test_a_published_file_converts_with_its_tags_settings(tmp_path: Path) -> None:
    """The file name of a published checkpoint selects its tag even with a bare --model."""
    tag = get_entry("c2d_r50").tag("kinetics400_vnl8x8")
    source = randomise(nlzoo.load("c2d_r50", pretrained=False, num_classes=400, **tag.model_args))
    checkpoint = write_caffe2(source, tmp_path / "c2d_baseline_8x8_IN_pretrain_400k.pkl")

    out = convert_checkpoint("caffe2", "c2d_r50", checkpoint, tmp_path / "out")
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained_tag"] == "kinetics400_vnl8x8"
    assert config["model_args"]["stem_pool_padding"] == 0
    assert config["label_names"][:2] == ["abseiling", "air drumming"]
    assert config["provenance"]["license"] == "cc-by-nc-4.0"
    assert config["provenance"]["metrics"] == {"top1": 71.9, "top5": 90.0}
    assert config["provenance"]["origin_url"].endswith("/c2d_baseline_8x8_IN_pretrain_400k.pkl")
    converted = nlzoo.load(out)
    torch.testing.assert_close(converted.layer4[2].conv3.weight, source.layer4[2].conv3.weight, rtol=0, atol=0)
    assert converted.maxpool.padding == (0, 0, 0)


def test_the_pyslowfast_zoo_i3d_nln_layout_converts(tmp_path: Path) -> None:
    """I3D_NLN_8x8_R50.pkl as documented (anchors-arch section 3): blob names and shapes, 5 NL blocks."""
    source = randomise(nlzoo.load("i3d_r50_nl", pretrained=False, num_classes=400))
    checkpoint = write_caffe2(source, tmp_path / "I3D_NLN_8x8_R50.pkl", sgd_state=False)
    shapes = {k: v.shape for k, v in load_pickle(checkpoint)["blobs"].items() if hasattr(v, "shape")}
    assert shapes["conv1_w"] == (64, 3, 5, 7, 7) and shapes["pred_w"] == (400, 2048)
    assert shapes["res4_2_branch2a_w"] == (256, 1024, 3, 1, 1) and shapes["res5_1_branch2a_w"] == (512, 2048, 3, 1, 1)
    assert shapes["nonlocal_conv3_1_theta_w"] == (256, 512, 1, 1, 1) and shapes["nonlocal_conv3_3_out_b"] == (512,)
    assert shapes["nonlocal_conv4_5_bn_riv"] == (1024,)
    assert sorted({k.split("_theta")[0] for k in shapes if "_theta_w" in k}) == [
        "nonlocal_conv3_1",
        "nonlocal_conv3_3",
        "nonlocal_conv4_1",
        "nonlocal_conv4_3",
        "nonlocal_conv4_5",
    ]
    out = convert_checkpoint("caffe2", "i3d_r50_nl", checkpoint, tmp_path / "out")  # the file name finds the tag
    assert json.loads((out / "config.json").read_text())["pretrained_tag"] == "kinetics400"
    converted = nlzoo.load(out).eval()
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(converted.state_dict()[key], value, rtol=0, atol=0, msg=key)
