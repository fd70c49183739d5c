"""3-D convolutions at inference speed: fp32 on CPU through oneDNN whatever their size, and half precision
without per-call weight casts.

PyTorch sends an fp32 CPU convolution with batch 1 to its native (im2col) kernel instead of oneDNN when
``batch * channels * dim2 * dim3`` of the input is at most 20480, a size rule written for 2-D images. For
video inputs it catches res3-res5 of an I3D ResNet at 8 frames (e.g. 1x256x4x14x14: 14,336): there the native
kernel is 1.5-2.2x slower on its 3x3 convolutions and returns a contiguous tensor, so the next layers pay
layout copies and mixed-layout additions (measured on an Intel Xeon: 23 of i3d_r50_nl's 73 convolutions,
28% of its fp32 time). :func:`use_onednn_convolutions` makes a model's :class:`~torch.nn.Conv3d` layers call
oneDNN directly: fp32 on CPU without autograd, autocast (bf16 / fp16 autocast goes to oneDNN anyway),
compilation or tracing. Outputs match the native kernel to float rounding; training is untouched.

Under bf16 / fp16 autocast without autograd the same layers keep a half-precision copy of their fp32 weight and
bias instead of letting autocast cast them again on every call (autocast's own cache lasts one autocast region,
i.e. one batch): i3d_r50_nl spent ~5 ms of its 130 ms bf16 forward in those casts on an AMD EPYC Zen 5. The
copies cost half the layers' fp32 weight memory, are held per parameter object (a weak reference: they go with
it) and are made again whenever the parameter's storage or version counter changes (in-place updates,
``load_state_dict``); results are bitwise those of autocast's casts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from ..precision import active_autocast_dtype

# parameter -> ((storage address, version, dtype), its copy in that dtype); keyed by identity, entries go with
# their parameter
_HALF_COPIES = WeakIdKeyDictionary()


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


class OneDnnConv3d(nn.Conv3d):
    """A :class:`~torch.nn.Conv3d` that runs on oneDNN for fp32 CPU inference and keeps half-precision weights
    under autocast (see the module docstring).

    Same parameters, state dict and results as the layer it replaces; built by :func:`use_onednn_convolutions`.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        plain_inference = (
            not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()  # inductor fuses aten convolutions and pre-casts weights itself
            and not torch.jit.is_tracing()  # the TorchScript ONNX exporter has no symbolic for mkldnn_convolution
        )
        half = active_autocast_dtype(input.device.type)
        if (
            plain_inference
            and half in (torch.bfloat16, torch.float16)
            and weight.dtype == torch.float32
            and input.dtype in (torch.float32, half)
        ):
            weight = _half_copy(weight, half)
            bias = None if bias is None else _half_copy(bias, half)
            return super()._conv_forward(input.to(half), weight, bias)  # autocast finds nothing left to cast
        if (
            plain_inference
            and half is None
            and input.device.type == "cpu"
            and input.dtype == weight.dtype == torch.float32
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and torch.backends.mkldnn.enabled  # a user's torch.backends.mkldnn.flags(enabled=False) still holds
        ):
            return torch.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


def use_onednn_convolutions(model: nn.Module) -> int:
    """Make every plain :class:`~torch.nn.Conv3d` in ``model`` an :class:`OneDnnConv3d`, in place (the same
    objects, so names, hooks and parameters stay); returns how many. Does nothing without oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return 0
    convs = [m for m in model.modules() if type(m) is nn.Conv3d]
    for conv in convs:
        conv.__class__ = OneDnnConv3d
    return len(convs)
