"""Bad input to the converters is a clear error: wrong format, wrong model, keys left over, ambiguity."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import nlzoo
from nlzoo.zoo import convert_checkpoint
from nlzoo.zoo.converters import ConversionError

from .layouts import export, pyslowfast_name, randomise, write_caffe2, write_mmaction2, write_pyslowfast

CFG = "MODEL:\n  ARCH: i3d\nNONLOCAL:\n  INSTANTIATION: softmax\n"


@pytest.fixture(scope="module")
def i3d_nl() -> torch.nn.Module:
    return randomise(nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=4))


@pytest.fixture
def slowfast_file(tmp_path: Path, i3d_nl: torch.nn.Module) -> Path:
    return write_pyslowfast(i3d_nl, tmp_path / "i3d.pyth", cfg=CFG)


def test_unknown_source_lists_the_known_ones(slowfast_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown checkpoint source 'slowfast'; choose one of pyslowfast, caffe2"):
        convert_checkpoint("slowfast", "i3d_r18_nl", slowfast_file, tmp_path / "out")


def test_unknown_model_suggests_close_names(slowfast_file: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown model 'i3d_r18_nl5'.*Did you mean 'i3d_r18_nl'"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl5", slowfast_file, tmp_path / "out")


@pytest.mark.parametrize(
    ("wrong", "right"), [("caffe2", "pyslowfast"), ("mmaction2", "pyslowfast"), ("pytorchvideo", "pyslowfast")]
)
def test_a_file_of_another_format_names_the_right_source(
    slowfast_file: Path, tmp_path: Path, wrong: str, right: str
) -> None:
    with pytest.raises(ConversionError, match=rf"i3d\.pyth is a PySlowFast \.pyth .*; use --source {right}"):
        convert_checkpoint(wrong, "i3d_r18_nl", slowfast_file, tmp_path / "out")


def test_caffe2_and_mmaction2_files_are_recognised(tmp_path: Path, i3d_nl: torch.nn.Module) -> None:
    caffe2_file = write_caffe2(i3d_nl, tmp_path / "c2.pkl")
    with pytest.raises(ConversionError, match="Caffe2 .pkl.*; use --source caffe2"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", caffe2_file, tmp_path / "out")
    mm_file = write_mmaction2(i3d_nl, tmp_path / "mm.pth")
    with pytest.raises(ConversionError, match="mmaction2 .pth.*; use --source mmaction2"):
        convert_checkpoint("pytorchvideo", "i3d_r18_nl", mm_file, tmp_path / "out")


def test_the_wrong_model_is_named_with_what_the_file_looks_like(slowfast_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"mis-shaped: conv1\.weight: checkpoint \(64, 3, 5, 7, 7\)") as err:
        convert_checkpoint("pyslowfast", "c2d_r18_nl", slowfast_file, tmp_path / "out")
    assert "looks like i3d_r18_nl (ResNet-18, I3D, non-local blocks after layer2.1, layer3.1)" in str(err.value)
    with pytest.raises(ConversionError, match=r"unexpected: layer2\.1_nonlocal\.conv_theta\.weight") as err:
        convert_checkpoint("pyslowfast", "i3d_r18", slowfast_file, tmp_path / "out")
    assert "looks like i3d_r18_nl" in str(err.value)
    with pytest.raises(ConversionError, match=r"(?s)201 missing: layer1\.0\.conv3\.weight.*looks like i3d_r18_nl"):
        convert_checkpoint("pyslowfast", "i3d_r50_nl", slowfast_file, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_entries_no_rule_explains_are_listed(tmp_path: Path, i3d_nl: torch.nn.Module) -> None:
    weights = export(i3d_nl, pyslowfast_name)
    weights["s5.pathway0_res0.branch2.a_extra.weight"] = torch.zeros(1)
    weights["head.act.scale"] = torch.zeros(1)
    torch.save({"model_state": weights, "cfg": CFG}, tmp_path / "extra.pyth")
    with pytest.raises(
        ConversionError, match=r"2 pyslowfast entries are not weights.*a_extra\.weight, head\.act\.scale"
    ):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", tmp_path / "extra.pyth", tmp_path / "out")


def test_a_missing_weight_is_listed(tmp_path: Path, i3d_nl: torch.nn.Module) -> None:
    weights = export(i3d_nl, pyslowfast_name)
    del weights["s2.pathway0_res0.branch2.b.weight"]
    torch.save({"model_state": weights, "cfg": CFG}, tmp_path / "hole.pyth")
    with pytest.raises(ConversionError, match=r"1 missing: layer1\.0\.conv2\.weight"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", tmp_path / "hole.pyth", tmp_path / "out")


def test_ambiguous_nonlocal_blocks_need_their_pairwise_function(tmp_path: Path, i3d_nl: torch.nn.Module) -> None:
    no_cfg = write_pyslowfast(i3d_nl, tmp_path / "nocfg.pyth", cfg=None)
    with pytest.raises(ConversionError, match="do not always record which pairwise function.*--model-args"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", no_cfg, tmp_path / "out")
    mm = write_mmaction2(i3d_nl, tmp_path / "mm.pth")
    with pytest.raises(ConversionError, match=r"use_scale=False \(softmax_scale=1\.0\)"):
        convert_checkpoint(
            "mmaction2", "i3d_r18_nl", mm, tmp_path / "out", nonlocal_args={"instantiation": "embedded_gaussian"}
        )


def test_pyslowfast_variants_nlzoo_lacks_are_refused(tmp_path: Path, i3d_nl: torch.nn.Module) -> None:
    path = write_pyslowfast(i3d_nl, tmp_path / "nopool.pyth", cfg="MODEL:\n  ARCH: i3d_nopool\n")
    with pytest.raises(ConversionError, match="MODEL.ARCH='i3d_nopool'"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", path, tmp_path / "out")


def test_a_tag_of_another_format_is_refused(slowfast_file: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConversionError, match="published as a caffe2 checkpoint .*I3D_NLN_8x8_R50.pkl.*--source caffe2"
    ):
        convert_checkpoint("pyslowfast", "i3d_r50_nl.kinetics400", slowfast_file, tmp_path / "out")


def test_files_in_nlzoo_names_or_of_no_format(tmp_path: Path, i3d_nl: torch.nn.Module) -> None:
    torch.save(i3d_nl.state_dict(), tmp_path / "plain.pth")
    with pytest.raises(ConversionError, match="already uses torchvision/nlzoo key names"):
        convert_checkpoint("mmaction2", "i3d_r18_nl", tmp_path / "plain.pth", tmp_path / "out")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ConversionError, match="is not the authors' Caffe2 .pkl .* nor any format nlzoo converts"):
        convert_checkpoint("caffe2", "i3d_r18_nl", tmp_path / "other.pkl", tmp_path / "out")


def test_output_must_be_a_folder_and_num_classes_comes_from_the_file(slowfast_file: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is not a folder"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", slowfast_file, tmp_path / "file")
    with pytest.raises(TypeError, match="num_classes comes from the checkpoint"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", slowfast_file, tmp_path / "out", num_classes=3)
    with pytest.raises(TypeError, match="unexpected argument 'stem_pool_pading'.*Did you mean 'stem_pool_padding'"):
        convert_checkpoint("pyslowfast", "i3d_r18_nl", slowfast_file, tmp_path / "out", stem_pool_pading=0)


def test_an_unsafe_checkpoint_is_one_line_whose_advice_converts(
    tmp_path: Path, i3d_nl: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real PySlowFast .pyth may hold pickled objects (its cfg); the advice keeps the weights under their key."""
    import argparse

    from nlzoo.zoo.converters import UnsafeCheckpointError

    unsafe = tmp_path / "unsafe.pyth"
    torch.save({"model_state": export(i3d_nl, pyslowfast_name), "cfg": argparse.Namespace(arch="i3d")}, unsafe)
    with pytest.raises(UnsafeCheckpointError) as refused:
        convert_checkpoint("pyslowfast", "i3d_r18_nl", unsafe, tmp_path / "out")
    message = str(refused.value)
    assert "\n" not in message and "argparse.Namespace" in message
    monkeypatch.chdir(tmp_path)
    exec(message.split("in Python, ", 1)[1], {"torch": torch})  # following the advice, as a user would
    weights = tmp_path / "weights.pth"  # the weights alone: the pairwise function is then given (tested above)
    out = convert_checkpoint(
        "pyslowfast", "i3d_r18_nl", weights, tmp_path / "out", nonlocal_args={"instantiation": "embedded_gaussian"}
    )
    assert torch.equal(nlzoo.load(str(out)).state_dict()["fc.weight"], i3d_nl.state_dict()["fc.weight"])
