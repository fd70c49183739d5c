"""Convolutions of prepared networks at inference speed (:func:`use_inference_convolutions`).

**On CPU every prepared convolution runs on oneDNN, with its weights reordered once.** oneDNN computes in a
blocked weight layout of its own (with AMX, tiles of bf16 pairs); a plain tensor is reordered into it on
every call, which for the large res4/res5 layers of a video ResNet at batch 1 cost as much as the
product: on an Intel Xeon with AMX the 2048->512 1x1x1 convolution of res5 took 0.52 ms in bf16 with a
plain weight and 0.22 ms with a reordered one, the 512-wide 1x3x3 1.13 vs 0.50 ms (fp32: 1.48 vs 1.04).
So each layer keeps its weight reordered (in the precision it runs in) and uses it until the parameter
changes; a weight reordered for one input shape still gives exact results for any other. This also routes
batch-1 fp32 inputs that PyTorch would send to its native kernel (its rule, ``batch * channels * dim2 *
dim3`` at most 20480, was written for images and caught res3-res5 of an I3D ResNet at 8 frames, where the
native kernel was 1.5-2.2x slower and answered in contiguous layout, 28% of i3d_r50_nl's fp32 time) to
oneDNN. The reordered copies live per parameter object (weakly: they go with it) and are made again
whenever the parameter's storage or version counter changes (in-place updates, ``load_state_dict``).

**A residual block's ReLU and shortcut addition run inside the convolution** (:func:`conv_bn_relu`, which the
ResNet-3D blocks and stems call): once BatchNorm is folded, ``relu(conv(x) + shortcut)`` is one oneDNN
convolution with the addition and the ReLU applied to the accumulator before it is written, instead of
two more passes over the activation map. With AMX the convolutions are so fast that those passes took 21%
of i3d_r50_nl's bf16 forward (ReLU 12%, additions 10%): res2's expansion convolution with its sum and ReLU
took 0.87 ms fused against 2.71 ms. The sum is rounded once instead of twice, so bf16 results differ from
the unfused ones by bf16 rounding; fp32 results agree to float rounding.

Under bf16 / fp16 autocast on CPUs whose oneDNN has no kernels for that precision, layers keep
half-precision copies of their weights instead of letting autocast cast them on every call. Training
(autograd on), ``torch.compile`` (inductor reorders and fuses itself), tracing, other devices and
``torch.backends.mkldnn.flags(enabled=False)`` take PyTorch's own path, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks
from torch.utils.weak import WeakIdKeyDictionary

from ..precision import active_autocast_dtype
from .space_to_depth import fold_input, fold_weight, folded_geometry, folds_space

# parameter -> {dtype: ((storage address, version), its copy)}; keyed by identity, entries go with their parameter
_HALF_COPIES = WeakIdKeyDictionary()
_REORDERED = WeakIdKeyDictionary()
_HALF = (torch.bfloat16, torch.float16)


def _kept_copy(
    cache: WeakIdKeyDictionary, tensor: torch.Tensor, dtype: torch.dtype, make: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``make(tensor in dtype)``, made once per storage, version and dtype of ``tensor`` (one copy per dtype, so
    a model run in turns at two precisions keeps both; every time for tensors made under
    ``torch.inference_mode``, which have no version counter to tell an in-place change)."""
    if tensor.is_inference():
        return make(tensor.to(dtype))
    copies = cache.setdefault(tensor, {})
    key = (tensor.data_ptr(), tensor._version)
    cached = copies.get(dtype)
    if cached is None or cached[0] != key:
        cached = copies[dtype] = (key, make(tensor.detach().to(dtype)))
    return cached[1]


def _half_copy(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return _kept_copy(_HALF_COPIES, tensor, dtype, lambda t: t)


def _plain_inference() -> bool:
    return (
        not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()  # inductor fuses aten convolutions and pre-casts weights itself
        and not torch.jit.is_tracing()  # the TorchScript ONNX exporter has no symbolic for oneDNN's ops
    )


def _half_arguments(
    input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
    """The convolution's arguments in autocast's half dtype with kept weight copies, or None where autocast's
    own casts apply (no half autocast, autograd, compilation, or inputs autocast would not cast)."""
    half = active_autocast_dtype(input.device.type)
    if half not in _HALF or weight.dtype != torch.float32 or input.dtype not in (torch.float32, half):
        return None
    if not _plain_inference():
        return None
    return input.to(half), _half_copy(weight, half), None if bias is None else _half_copy(bias, half)


def _onednn_dtype(conv: nn.Module, x: torch.Tensor) -> torch.dtype | None:
    """The dtype oneDNN runs ``conv`` in for input ``x`` (autocast's half dtype, or fp32 outside autocast), or
    None where PyTorch's own path applies (module docstring)."""
    if type(conv) not in _INFERENCE_CLASSES.values() or x.device.type != "cpu":
        return None
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or conv.weight.dtype != torch.float32:
        return None
    if not (_plain_inference() and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return None
    spans = zip(x.shape[2:], conv.padding, conv.dilation, conv.kernel_size, strict=False)
    if x.dim() != conv.weight.dim() or any(size + 2 * p < d * (k - 1) + 1 for size, p, d, k in spans):
        return None  # PyTorch's own error says what is wrong (oneDNN's does not)
    half = active_autocast_dtype("cpu")
    if half is None:
        return torch.float32 if x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu") else None
    supported = {
        torch.bfloat16: torch.ops.mkldnn._is_mkldnn_bf16_supported,
        torch.float16: torch.ops.mkldnn._is_mkldnn_fp16_supported,
    }.get(half)
    return half if supported is not None and supported() and x.dtype in (torch.float32, half) else None


def _onednn_conv(
    conv: nn.Module, x: torch.Tensor, dtype: torch.dtype, *, shortcut: torch.Tensor | None = None, relu: bool = False
) -> torch.Tensor:
    """``conv(x)`` [``+ shortcut``] [then ReLU] as one oneDNN convolution with its reordered weight (stems over
    few channels folded in half precision, :mod:`nlzoo.models.space_to_depth`).

    An input smaller than the kernel in some dimension (a 1-frame clip through I3D's 5x7x7 stem) runs in fp32
    and is cast to ``dtype`` after: PyTorch 2.14's bf16 oneDNN 3-D convolution answers such inputs wrongly
    (up to 100% relative error, autocast's own path included; 155 of 1,062 small shapes tried).
    """
    extents = (d * (k - 1) + 1 for k, d in zip(conv.kernel_size, conv.dilation, strict=True))
    if dtype != torch.float32 and any(size < e for size, e in zip(x.shape[2:], extents, strict=False)):
        return _onednn_conv(conv, x.float(), torch.float32, shortcut=shortcut, relu=relu).to(dtype)
    folded = folds_space(conv, dtype)
    if folded:
        geometry, x = folded_geometry(conv), fold_input(conv, x, dtype)
    else:
        geometry, x = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups), x.to(dtype)

    def reorder(weight: torch.Tensor) -> torch.Tensor:
        weight = fold_weight(weight) if folded else weight
        return torch.ops.mkldnn._reorder_convolution_weight(weight, *geometry, list(x.shape))

    weight = _kept_copy(_REORDERED, conv.weight, dtype, reorder)
    bias = conv.bias if conv.bias is None or dtype == torch.float32 else _half_copy(conv.bias, dtype)
    if shortcut is None or conv.groups != 1:  # grouped: PyTorch's binary fusion has no bf16 fallback (2.14)
        y = torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, *geometry, "relu" if relu and shortcut is None else "none", [], ""
        )
        return y if shortcut is None else torch.relu_(y.add_(shortcut)) if relu else y.add_(shortcut)
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, shortcut.to(dtype), weight, bias, *geometry, "add", None, "relu" if relu else None, [], ""
    )


class _InferenceConv:
    """What the prepared convolution classes share: oneDNN with reordered weights where it applies, else
    PyTorch's convolution with kept half-precision weights under autocast (module docstring)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        dtype = _onednn_dtype(self, input) if weight is self.weight and bias is self.bias else None  # type: ignore[arg-type]
        if dtype is not None:
            return _onednn_conv(self, input, dtype)  # type: ignore[arg-type]
        return super()._conv_forward(*(_half_arguments(input, weight, bias) or (input, weight, bias)))  # type: ignore[misc]


class InferenceConv2d(_InferenceConv, nn.Conv2d):
    """A :class:`~torch.nn.Conv2d` made faster at inference (module docstring).

    Same parameters, state dict and results as the layer it replaces; built by :func:`use_inference_convolutions`.
    """


class InferenceConv3d(_InferenceConv, nn.Conv3d):
    """A :class:`~torch.nn.Conv3d` made faster at inference (module docstring).

    Same parameters, state dict and results as the layer it replaces; built by :func:`use_inference_convolutions`.
    """


_INFERENCE_CLASSES: dict[type[nn.Module], type[nn.Module]] = {nn.Conv2d: InferenceConv2d, nn.Conv3d: InferenceConv3d}


def conv_bn_relu(
    conv: nn.Module, bn: nn.Module, relu: nn.Module, x: torch.Tensor, shortcut: torch.Tensor | None = None
) -> torch.Tensor:
    """``relu(bn(conv(x)) + shortcut)`` (without ``shortcut``: ``relu(bn(conv(x)))``), as residual blocks
    write it: one oneDNN convolution with post-ops where ``conv`` is prepared, ``bn`` folded
    (``nn.Identity``) and nobody observes the modules this skips (no hooks), the three modules one after
    the other everywhere else.

    The addition goes into ``bn``'s output in place: a fresh activation that nothing saved for backward
    reads (BatchNorm and convolutions keep their inputs), so the sum costs no new tensor (2.3x faster at res2
    than ``+``).
    """
    modules = (conv, bn, relu)
    observed = any(m._forward_hooks or m._forward_pre_hooks for m in modules)
    if type(bn) is nn.Identity and type(relu) is nn.ReLU and not observed:
        dtype = None if _global_forward_hooks or _global_forward_pre_hooks else _onednn_dtype(conv, x)
        if dtype is not None:
            return _onednn_conv(conv, x, dtype, shortcut=shortcut, relu=True)
    y = bn(conv(x))
    return relu(y if shortcut is None else y.add_(shortcut))


def use_inference_convolutions(model: nn.Module) -> int:
    """Make every plain :class:`~torch.nn.Conv2d` / :class:`~torch.nn.Conv3d` in ``model`` an
    :class:`InferenceConv2d` / :class:`InferenceConv3d`, in place (the same objects, so names, hooks and
    parameters stay); returns how many. Subclasses (e.g. timm's same-padding convolutions) are left alone."""
    convs = [m for m in model.modules() if type(m) in _INFERENCE_CLASSES]
    for conv in convs:
        conv.__class__ = _INFERENCE_CLASSES[type(conv)]
    return len(convs)
