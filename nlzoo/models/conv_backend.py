"""3-D convolutions at fp32 inference on CPU through oneDNN, whatever their size.

PyTorch sends an fp32 CPU convolution with batch 1 to its native (im2col) kernel instead of oneDNN when
``batch * channels * dim2 * dim3`` of the input is at most 20480, a size rule written for 2-D images. For
video inputs it catches res3-res5 of an I3D ResNet at 8 frames (e.g. 1x256x4x14x14: 14,336): there the native
kernel is 1.5-2.2x slower on its 3x3 convolutions and returns a contiguous tensor, so the next layers pay
layout copies and mixed-layout additions (measured on an Intel Xeon: 23 of i3d_r50_nl's 73 convolutions,
28% of its fp32 time). :func:`use_onednn_convolutions` makes a model's :class:`~torch.nn.Conv3d` layers call
oneDNN directly: fp32 on CPU without autograd, autocast (bf16 / fp16 autocast goes to oneDNN anyway),
compilation or tracing. Outputs match the native kernel to float rounding; training is untouched.
"""

from __future__ import annotations

import torch
from torch import nn


class OneDnnConv3d(nn.Conv3d):
    """A :class:`~torch.nn.Conv3d` that runs on oneDNN for fp32 CPU inference (see the module docstring).

    Same parameters, state dict and results as the layer it replaces; built by :func:`use_onednn_convolutions`.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (
            input.device.type == "cpu"
            and input.dtype == weight.dtype == torch.float32
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()  # inductor fuses aten convolutions, not this op
            and not torch.jit.is_tracing()  # the TorchScript ONNX exporter has no symbolic for it
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
