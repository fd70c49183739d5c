"""Deployment: ONNX files and ``torch.export`` programs of any zoo network, each checked against PyTorch.

Both go through ``torch.export`` (the graph PyTorch itself runs, no TorchScript tracing). ONNX uses the dynamo
exporter (``torch.onnx.export(..., dynamo=True)``) at opset :data:`OPSET`, so the non-local fast paths export
as they run:

* softmax forms (embedded Gaussian, Gaussian): ``scaled_dot_product_attention`` lowers to MatMul / Softmax;
* dot product: the associative order ``q (k^T v) / M`` chosen for the exported clip size is plain MatMuls;
* concatenation: the sort / prefix-sum path exports as is, except ``searchsorted``, which has no ONNX operator:
  it is written as a count of ``sorted < value`` comparisons (:func:`_searchsorted_as_count`), the same
  integers, so the path stays exact (it holds an N x M boolean mask at run time instead of a binary search).

Clip / image sizes are fixed at export (the fast-path choices depend on them); the batch may be dynamic.
A file is written atomically, checked with ``onnx.checker`` and run in onnxruntime on a second random input;
the export fails unless the largest difference is within :data:`RTOL` of the output's scale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, ExportError
from .files import atomic_write

OPSET = 18
RTOL = 1e-4


@dataclass(frozen=True)
class ExportReport:
    """What was written: the file, its input shape (batch first), and the measured parity with PyTorch.

    ``max_rel_diff`` is ``max |exported - eager| / max |eager|`` over the outputs of a fresh random input.
    """

    path: Path
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    max_rel_diff: float | None
    opset: int | None = None


def export_input_shape(
    model: nn.Module, *, frames: int | None = None, size: Sequence[int] | None = None
) -> tuple[int, ...]:
    """(C, T, H, W) or (C, H, W) for one example: the model's data config, with ``frames`` / ``size`` overriding.

    Raises:
        ConfigError: no data config and no size given, or ``frames`` for an image model.
    """
    config = getattr(getattr(model, "nlzoo_config", None), "data_config", None)
    if config is None and size is None:
        raise ConfigError(f"{type(model).__name__} carries no data config; give the input size (size=(H, W))")
    video = frames is not None or (config is not None and config.num_frames is not None)
    if frames is not None and config is not None and config.num_frames is None:
        raise ConfigError(f"{config_name(model)} is an image model; drop frames= (it takes (B, 3, H, W) images)")
    h, w = tuple(size) if size is not None else tuple(config.crop_size)  # type: ignore[union-attr]
    channels = getattr(model, "in_chans", 3)
    if video:
        t = frames if frames is not None else config.num_frames  # type: ignore[union-attr]
        return (channels, int(t), int(h), int(w))
    return (channels, int(h), int(w))


def config_name(model: nn.Module) -> str:
    config = getattr(model, "nlzoo_config", None)
    return config.architecture if config is not None else type(model).__name__


def export_program(
    model: nn.Module,
    path: str | os.PathLike[str] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = False,
) -> tuple[torch.export.ExportedProgram, ExportReport]:
    """``torch.export`` the model in eval mode (and ``torch.export.save`` it to ``path``), checked for parity.

    Args:
        model: any zoo network (or other module taking one tensor).
        path: where to save the ``.pt2`` program; ``None`` only exports.
        input_shape: one example's shape without the batch, e.g. (3, 8, 224, 224); default the data config's.
        dynamic_batch: export with a symbolic batch size (otherwise the batch is 1).

    Raises:
        ExportError: the network cannot be exported (the reason), or the saved program disagrees with it.
    """
    shape = tuple(input_shape) if input_shape is not None else export_input_shape(model)
    program, example = _export(model, shape, dynamic_batch)
    report_path = Path(path) if path is not None else None
    if report_path is not None:
        _atomic_write(report_path, lambda tmp: torch.export.save(program, tmp))
        program = torch.export.load(report_path)
    diff = _max_rel_diff(model, program.module(), _fresh_input(example, dynamic_batch))
    _check_parity(model, diff, "torch.export program")
    return program, ExportReport(report_path or Path(), (example.shape[0], *shape), dynamic_batch, diff)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = False,
    opset: int = OPSET,
    verify: bool = True,
) -> ExportReport:
    """Write ``model`` (eval mode) as an ONNX file, check it with ``onnx.checker`` and run it in onnxruntime.

    Args:
        model: any zoo network.
        path: the ``.onnx`` file (weights inside it: zoo networks are far below protobuf's 2 GB).
        input_shape: one example's shape without the batch; default the model's data config
            (``(3, frames, H, W)`` for video networks).
        dynamic_batch: a symbolic batch dimension (``batch``) instead of 1.
        opset: the ONNX opset (default :data:`OPSET`).
        verify: compare onnxruntime with PyTorch on a fresh random input (needs onnxruntime).

    Returns:
        An :class:`ExportReport` with the measured ``max_rel_diff``.

    Raises:
        ExportError: the network cannot be exported (the reason), onnx / onnxscript are missing, or
            onnxruntime disagrees with PyTorch beyond :data:`RTOL`.
    """
    try:
        import onnx
    except ImportError as err:
        raise ExportError(f"ONNX export needs the export extra: pip install 'nlzoo[export]' ({err})") from None
    if Path(path).is_dir():
        raise ConfigError(f"{path} is a folder; give a file name for the export")
    shape = tuple(input_shape) if input_shape is not None else export_input_shape(model)
    program, example = _export(model, shape, dynamic_batch)
    try:
        onnx_program = torch.onnx.export(
            program,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=["input"],
            output_names=["output"],
            custom_translation_table=_translations(),
        )
    except Exception as err:  # the exporter wraps everything in its own report; keep the reason
        raise ExportError(f"{config_name(model)} cannot be converted to ONNX: {_reason(err)}") from err
    proto = _rank1_matmuls_as_matrix(onnx_program.model_proto)
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter keeps its own opset when converting down fails, and says so only in a log
        raise ExportError(
            f"{config_name(model)} cannot be written at ONNX opset {opset}: converting to it failed and the "
            f"exporter kept opset {written}; export at opset {written} (--opset {written})"
        )
    path = Path(path)
    _atomic_write(path, lambda tmp: onnx.save(proto, tmp))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{path}: the ONNX checker rejects the file: {_reason(err)}") from err
    diff = _onnxruntime_diff(model, path, _fresh_input(example, dynamic_batch)) if verify else None
    if diff is not None:
        _check_parity(model, diff, "onnxruntime")
    return ExportReport(path, (example.shape[0], *shape), dynamic_batch, diff, opset)


# ----------------------------------------------------------------------------------------------------------
def _export(
    model: nn.Module, shape: tuple[int, ...], dynamic_batch: bool
) -> tuple[torch.export.ExportedProgram, torch.Tensor]:
    """The eval-mode ``torch.export`` program and its example input (batch 2 when dynamic: torch.export
    specialises a batch of 1)."""
    if any(not isinstance(s, int) or s < 1 for s in shape):
        raise ConfigError(f"input shape must be positive ints (C, [T,] H, W); got {shape}")
    param = next(model.parameters(), None)
    example = torch.randn(2 if dynamic_batch else 1, *shape, device=param.device if param is not None else "cpu")
    model.eval()
    check = getattr(model, "check_input", None)
    if check is not None:
        try:
            check(example)
        except ValueError as err:
            raise ConfigError(f"{config_name(model)} cannot take the export input: {err}") from None
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    try:
        with torch.no_grad():
            return torch.export.export(model, (example,), dynamic_shapes=dynamic), example
    except Exception as err:
        raise ExportError(f"{config_name(model)} cannot be exported with torch.export: {_reason(err)}") from err


def _reason(err: BaseException) -> str:
    """The first informative line of an exporter's message (not the tracer dump that follows)."""
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    lines = [line.strip() for line in str(root).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"{type(root).__name__}: {first[:300]}"


def _fresh_input(example: torch.Tensor, dynamic_batch: bool) -> torch.Tensor:
    """A new random input, with another batch size when the batch is dynamic."""
    batch = 3 if dynamic_batch else example.shape[0]
    return torch.randn(batch, *example.shape[1:], device=example.device)


def _max_rel_diff(model: nn.Module, exported: Any, x: torch.Tensor) -> float:
    with torch.no_grad():
        return _rel_diff(_outputs(exported(x)), _outputs(model(x)))


def _outputs(y: Any) -> list[torch.Tensor]:
    return [t.detach().float().cpu() for t in (y if isinstance(y, list | tuple) else [y])]


def _rel_diff(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor]) -> float:
    scale = max(float(w.abs().max()) for w in want) or 1.0
    return max(float((g - w).abs().max()) for g, w in zip(got, want, strict=True)) / scale


def _check_parity(model: nn.Module, diff: float, what: str) -> None:
    if not diff <= RTOL:
        raise ExportError(
            f"{config_name(model)}: {what} disagrees with PyTorch (max relative difference {diff:.2e} > {RTOL:g})"
        )


def _onnxruntime_diff(model: nn.Module, path: Path, x: torch.Tensor) -> float:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ExportError(f"checking the file needs onnxruntime: pip install 'nlzoo[export]' ({err})") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.float().cpu().numpy()})
    with torch.no_grad():
        want = _outputs(model(x))
    return _rel_diff([torch.from_numpy(g) for g in got], want)


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it over ``path``."""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name for the export")
    atomic_write(path, lambda tmp: write(str(tmp)))


def _translations() -> dict[Any, Any]:
    """ONNX translations for aten ops the exporter has none for."""
    return {torch.ops.aten.searchsorted.Tensor: _searchsorted_as_count()}


def _searchsorted_as_count() -> Any:
    """``searchsorted(sorted, values)`` (ascending, last dim) as ``sum_j [sorted_j < value]`` (``<=`` for
    ``side="right"``): the same insertion indices, exactly, from Less / ReduceSum."""
    from onnx import TensorProto
    from onnxscript import opset18 as op

    def searchsorted(
        sorted_sequence: Any,
        self: Any,
        out_int32: bool = False,
        right: bool = False,
        side: str | None = None,
        sorter: Any = None,
    ) -> Any:
        if sorter is not None:
            raise ExportError("searchsorted with a sorter= has no ONNX translation in nlzoo")
        keys = op.Unsqueeze(sorted_sequence, op.Constant(value_ints=[-2]))
        values = op.Unsqueeze(self, op.Constant(value_ints=[-1]))
        below = op.LessOrEqual(keys, values) if (right or side == "right") else op.Less(keys, values)
        count = op.ReduceSum(op.Cast(below, to=TensorProto.INT64), op.Constant(value_ints=[-1]), keepdims=0)
        return op.Cast(count, to=TensorProto.INT32) if out_int32 else count

    return searchsorted


def _rank1_matmuls_as_matrix(proto: Any) -> Any:
    """Rewrite ``MatMul(A, b)`` with a 1-D ``b`` as ``Squeeze(MatMul(A, Unsqueeze(b, -1)), -1)``.

    The same numbers, but onnxruntime 1.32's extended graph optimisations fuse a Transpose into a MatMul with
    a 1-D right operand wrongly (errors of order 1 in our parity checks; correct with
    ``ORT_ENABLE_BASIC``); the concatenation instantiation projects its embeddings that way.
    """
    from onnx import helper

    graph = proto.graph
    rank = {t.name: len(t.dims) for t in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        if info.type.tensor_type.HasField("shape"):
            rank[info.name] = len(info.type.tensor_type.shape.dim)
    nodes = []
    for i, node in enumerate(graph.node):
        if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx") or rank.get(node.input[1]) != 1:
            nodes.append(node)
            continue
        axis, column, product = f"_nlzoo_axis_{i}", f"_nlzoo_col_{i}", f"_nlzoo_mm_{i}"
        nodes += [
            helper.make_node("Constant", [], [axis], value_ints=[-1]),
            helper.make_node("Unsqueeze", [node.input[1], axis], [column]),
            helper.make_node("MatMul", [node.input[0], column], [product]),
            helper.make_node("Squeeze", [product, axis], [node.output[0]]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return proto
