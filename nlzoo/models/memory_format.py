"""The memory layout convolutional networks run fastest in.

Convolutions run faster on channels-last (NHWC / NDHWC) tensors through oneDNN/cuDNN: on the 2-core CPU,
``benchmarks/models.py`` measured 1.1-1.2x faster inference and 1.15-1.35x faster training steps for the I3D
ResNets at 8x224x224, with the same outputs to float rounding (at tiny inputs it can be slower); image ResNets
at batch 1 and 224x224 gained 1.04-1.20x in fp32 and 1.22-1.44x in bf16 inference, resnet50_nl 1.35x in
training steps at batch 8 (AMD EPYC Zen 5; the 64x64 synthetic recipe: 1.01x). Converting
the weights is enough: a convolution with channels-last weights produces channels-last outputs, so inputs
need no conversion.
"""

from __future__ import annotations

import torch
from torch import nn

_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def has_3d_convs(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv3d) for m in model.modules())


def to_channels_last(model: nn.Module) -> nn.Module:
    """``model`` with its 2D-conv weights in ``channels_last`` and 3D ones in ``channels_last_3d`` (in place).

    The strides are set explicitly even for 1x1(x1) kernels, which ``.contiguous(memory_format=...)`` leaves
    as they are (both layouts hold the same bytes): their gradients come out with channels-last strides,
    and DDP warns of a slow path when a gradient's strides differ from its parameter's.
    """
    for param in model.parameters():
        layout = _CHANNELS_LAST.get(param.dim())
        if layout is not None:
            param.data = torch.empty_like(param.data, memory_format=layout).copy_(param.data)
    return model
