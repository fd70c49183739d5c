"""Convolutions of prepared networks at inference speed (:func:`use_inference_convolutions`).

**fp32 3-D convolutions on CPU go to oneDNN whatever their size.** PyTorch sends an fp32 CPU convolution with
batch 1 to its native (im2col) kernel instead of oneDNN when ``batch * channels * dim2 * dim3`` of the input is
at most 20480, a size rule written for 2-D images. For video inputs it catches res3-res5 of an I3D ResNet at 8
frames (e.g. 1x256x4x14x14: 14,336): there the native kernel is 1.5-2.2x slower on its 3x3 convolutions and
returns a contiguous tensor, so the next layers pay layout copies and mixed-layout additions (measured on an
Intel Xeon: 23 of i3d_r50_nl's 73 convolutions, 28% of its fp32 time). :class:`OneDnnConv3d` calls oneDNN
directly: fp32 on CPU without autograd, autocast, compilation or tracing. Outputs match the native kernel to
float rounding.

**Under bf16 / fp16 autocast, 2-D and 3-D convolutions keep half-precision copies of their weights** instead
of letting autocast cast the fp32 weight and bias again on every call (autocast's own cache lasts one autocast
region, i.e. one batch): i3d_r50_nl spent ~5 ms of its 130 ms bf16 forward in those casts on an AMD EPYC Zen 5,
resnet50_nl ~3 ms of 37. The copies cost half the layers' fp32 weight memory, are held per parameter object
(weakly: they go with it) and are made again whenever the parameter's storage or version counter changes
(in-place updates, ``load_state_dict``); results are bitwise those of autocast's casts.

Training (autograd on), ``torch.compile`` (inductor pre-casts and fuses itself) and tracing take PyTorch's own
path, unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from ..precision import active_autocast_dtype

# parameter -> ((storage address, version, dtype), its copy in that dtype); keyed by identity, entries go with
# their parameter
_HALF_COPIES = WeakIdKeyDictionary()
_HALF = (torch.bfloat16, torch.float16)


def _half_copy(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` in ``dtype``, cast once per storage and version of ``tensor`` (every time for tensors made
    under ``torch.inference_mode``, which have no version counter to tell an in-place change)."""
    if tensor.is_inference():
        return tensor.to(dtype)
    key = (tensor.data_ptr(), tensor._version, dtype)
    cached = _HALF_COPIES.get(tensor)
    if cached is None or cached[0] != key:
        cached = (key, tensor.detach().to(dtype))
        _HALF_COPIES[tensor] = cached
    return cached[1]


def _plain_inference() -> bool:
    return (
        not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()  # inductor fuses aten convolutions and pre-casts weights itself
        and not torch.jit.is_tracing()  # the TorchScript ONNX exporter has no symbolic for mkldnn_convolution
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


class HalfWeightsConv2d(nn.Conv2d):
    """A :class:`~torch.nn.Conv2d` that keeps half-precision weights under autocast (module docstring).

    Same parameters, state dict and results as the layer it replaces; built by :func:`use_inference_convolutions`.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return super()._conv_forward(*(_half_arguments(input, weight, bias) or (input, weight, bias)))


class OneDnnConv3d(nn.Conv3d):
    """A :class:`~torch.nn.Conv3d` that runs on oneDNN for fp32 CPU inference and keeps half-precision weights
    under autocast (module docstring).

    Same parameters, state dict and results as the layer it replaces; built by :func:`use_inference_convolutions`.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        half = _half_arguments(input, weight, bias)
        if half is not None:
            return super()._conv_forward(*half)  # autocast finds nothing left to cast
        if (
            input.device.type == "cpu"
            and input.dtype == weight.dtype == torch.float32
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and not torch.is_autocast_enabled("cpu")
            and _plain_inference()
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled  # a user's torch.backends.mkldnn.flags(enabled=False) still holds
        ):
            return torch.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


_INFERENCE_CLASSES: dict[type[nn.Module], type[nn.Module]] = {nn.Conv2d: HalfWeightsConv2d, nn.Conv3d: OneDnnConv3d}


def use_inference_convolutions(model: nn.Module) -> int:
    """Make every plain :class:`~torch.nn.Conv2d` / :class:`~torch.nn.Conv3d` in ``model`` a
    :class:`HalfWeightsConv2d` / :class:`OneDnnConv3d`, in place (the same objects, so names, hooks and
    parameters stay); returns how many. Subclasses (e.g. timm's same-padding convolutions) are left alone."""
    convs = [m for m in model.modules() if type(m) in _INFERENCE_CLASSES]
    for conv in convs:
        conv.__class__ = _INFERENCE_CLASSES[type(conv)]
    return len(convs)
