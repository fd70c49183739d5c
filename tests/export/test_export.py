"""ONNX (dynamo exporter) and torch.export of every family and every pairwise instantiation, checked
independently of the exporter's own verification: onnx.checker, then onnxruntime vs PyTorch on a new input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nlzoo
from nlzoo.errors import ConfigError, ExportError
from nlzoo.export import OPSET, RTOL, export_onnx, export_program
from nlzoo.layers import NonLocalBlock, nonlocal_blocks

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _active(model: torch.nn.Module) -> torch.nn.Module:
    for _, block in nonlocal_blocks(model):
        torch.nn.init.normal_(block.norm.weight, std=0.5)
    return model.eval()


def _onnxruntime_rel_diff(model: torch.nn.Module, path: Path, x: torch.Tensor) -> float:
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        want = model(x)
    return float((got - want).abs().max() / want.abs().max())


def test_all_four_instantiations_and_their_fast_paths_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One C2D-R18 with a block of each instantiation; at 4x128x128 layer2's blocks take the fast paths (SDPA
    for the embedded Gaussian, associativity for the dot product), layer3's the sort path (concatenation)."""
    model = nlzoo.load("c2d_r18_nl10", pretrained=False)
    for name, inst in zip(
        ("layer2.0_nonlocal", "layer2.1_nonlocal", "layer3.0_nonlocal", "layer3.1_nonlocal"),
        ("embedded_gaussian", "dot_product", "gaussian", "concatenation"),
        strict=True,
    ):
        model.set_submodule(name, NonLocalBlock(model.get_submodule(name).in_channels, instantiation=inst))
    model = _active(model)
    sdpa_calls = []
    real_sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: sdpa_calls.append(1) or real_sdpa(*a, **k))
    x = torch.randn(3, 3, 4, 128, 128)
    with torch.no_grad():
        model(x)
    assert sdpa_calls, "the test input must exercise the SDPA path"
    dot = model.get_submodule("layer2.1_nonlocal")
    n, m, e = 2 * 16 * 16, 2 * 8 * 8, dot.inner_channels  # T halved by pool2
    assert (n + m) * e * e <= n * m * 2 * e, "the test input must exercise the associative dot product"

    report = export_onnx(model, tmp_path / "nl.onnx", input_shape=(3, 4, 128, 128), dynamic_batch=True)
    assert report.opset == OPSET and report.max_rel_diff is not None and report.max_rel_diff <= RTOL
    assert _onnxruntime_rel_diff(model, report.path, x) <= RTOL  # batch 3: the batch really is dynamic
    _, pt2 = export_program(model, tmp_path / "nl.pt2", input_shape=(3, 4, 128, 128))
    loaded = torch.export.load(tmp_path / "nl.pt2").module()
    y = torch.randn(1, 3, 4, 128, 128)
    with torch.no_grad():
        assert torch.allclose(loaded(y), model(y), rtol=1e-5, atol=1e-5)
    assert pt2.max_rel_diff is not None and pt2.max_rel_diff <= RTOL


FAMILIES = [
    ("i3d_r18_nl", (3, 4, 32, 32)),
    ("r2plus1d_18_nl", (3, 4, 32, 32)),
    ("resnet18_nl", (3, 64, 64)),
    ("simplebaseline_r18_nl", (3, 64, 64)),
    pytest.param("s3d_nl", (3, 13, 209, 209), marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "shape"), FAMILIES)
def test_each_family_exports_to_onnx_and_torch_export(name: str, shape: tuple[int, ...], tmp_path: Path) -> None:
    model = _active(nlzoo.load(name, pretrained=False))
    report = export_onnx(model, tmp_path / f"{name}.onnx", input_shape=shape)
    assert _onnxruntime_rel_diff(model, report.path, torch.randn(1, *shape)) <= RTOL
    program, _ = export_program(model, input_shape=shape)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        assert torch.allclose(program.module()(x), model(x), rtol=1e-4, atol=1e-5)


def test_input_shape_comes_from_the_data_config() -> None:
    from nlzoo.export import export_input_shape

    model = nlzoo.load("i3d_r18_nl", pretrained=False)
    assert export_input_shape(model) == (3, 8, 224, 224)
    assert export_input_shape(model, frames=4, size=(64, 96)) == (3, 4, 64, 96)
    with pytest.raises(ConfigError, match="image model"):
        export_input_shape(nlzoo.load("resnet18_nl", pretrained=False), frames=4)


class DataDependent(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.sum() > 0 else x


def test_an_architecture_that_cannot_export_says_why_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as err:
        export_onnx(DataDependent(), tmp_path / "x.onnx", input_shape=(3, 8, 8))
    message = str(err.value)
    assert "cannot be exported with torch.export" in message and "\n" not in message
    assert not (tmp_path / "x.onnx").exists()


def test_bad_sizes_and_paths(tmp_path: Path) -> None:
    model = nlzoo.load("i3d_r18_nl", pretrained=False)
    with pytest.raises(ConfigError, match="too small"):
        export_onnx(model, tmp_path / "x.onnx", input_shape=(3, 4, 16, 16))
    with pytest.raises(ConfigError, match="is a folder"):
        export_onnx(model, tmp_path, input_shape=(3, 4, 32, 32))


def test_searchsorted_translation_counts_exactly(tmp_path: Path) -> None:
    class Search(torch.nn.Module):
        def forward(self, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
            return torch.searchsorted(keys, values) + torch.searchsorted(keys, values, side="right")

    keys = torch.tensor([[0.0, 1.0, 1.0, 2.0, 5.0]]).repeat(2, 1)
    values = torch.tensor([[-1.0, 0.0, 1.0, 1.5, 5.0, 9.0]]).repeat(2, 1)
    from nlzoo.export import _translations

    torch.onnx.export(
        Search(), (keys, values), tmp_path / "s.onnx", dynamo=True, custom_translation_table=_translations()
    )
    session = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, dict(zip(names, (keys.numpy(), values.numpy()), strict=True)))[0]
    np.testing.assert_array_equal(got, Search()(keys, values).numpy())


def test_the_reported_opset_is_the_files_and_an_unreachable_one_is_refused(tmp_path: Path) -> None:
    """torch.onnx keeps opset 18 when converting down fails (it only logs that): the file must never claim
    another opset than it holds."""
    import onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    report = export_onnx(model, tmp_path / "x17.onnx", input_shape=(3, 8, 8), opset=17)  # converts down
    assert report.opset == 17 == onnx.load(tmp_path / "x17.onnx").opset_import[0].version
    with pytest.raises(ExportError, match=r"cannot be written at ONNX opset 3: .*export at opset 18") as err:
        export_onnx(model, tmp_path / "x3.onnx", input_shape=(3, 8, 8), opset=3)
    assert not (tmp_path / "x3.onnx").exists()
    advised = int(str(err.value).rsplit("--opset ", 1)[1].rstrip(")"))
    report = export_onnx(model, tmp_path / "x3.onnx", input_shape=(3, 8, 8), opset=advised)
    assert report.opset == advised == onnx.load(tmp_path / "x3.onnx").opset_import[0].version
