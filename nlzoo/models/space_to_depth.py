"""A stride-2 convolution over few channels as a stride-1 convolution over four times as many (space-to-depth).

A stem such as I3D's 5x7x7 convolution of the 3 colour channels gives the matrix units almost no depth to
work with (3 input channels per tap): on an Intel Xeon with AMX it ran at ~700 GFLOP/s in bf16, a quarter of
the GEMM peak, and took 15 of i3d_r50_nl's 77 ms. Folding each 2x2 block of pixels into the channels makes
it the same sum over 12 channels with a 4x4 spatial kernel (the 7x7 kernel padded with zeros to 8x8): 31%
more multiply-adds, at twice the speed.

With ``i = 2a + d``, ``sum_i x[2h + i] w[i] = sum_{a,d} x[2(h + a) + d] w[2a + d]``: the input's pixel pair
``d`` of block ``h + a`` meets the kernel's tap pair ``d`` of block ``a``, so the result is exact up to the
order of the additions. Only the last two (spatial) dimensions are folded; leading kernel dimensions (time)
keep their stride and padding.

Only in half precision: bf16 and fp16 dot products and matrix tiles consume channels in pairs or blocks, which
3 channels mostly leave empty, while fp32 multiply-adds have no such depth, so there the fold only adds its
zero taps (on an AMD EPYC Zen 3, fp32 stems took 1.01-1.20x as long folded).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_MAX_FOLDED_CHANNELS = 4  # more input channels already fill the matrix units
_FOLDED_DTYPES = (torch.bfloat16, torch.float16)


def folds_space(conv: nn.Module, dtype: torch.dtype) -> bool:
    """Whether this rewrites ``conv`` run in ``dtype``: half precision, at most 4 input channels, spatial stride
    2, no groups or dilation, numeric padding (inputs the kernel does not fit never get here:
    :mod:`nlzoo.models.conv_backend`)."""
    return (
        dtype in _FOLDED_DTYPES
        and isinstance(conv, nn.Conv2d | nn.Conv3d)
        and conv.in_channels <= _MAX_FOLDED_CHANNELS
        and conv.groups == 1
        and tuple(conv.stride[-2:]) == (2, 2)
        and all(d == 1 for d in conv.dilation)
        and not isinstance(conv.padding, str)
    )


def folded_geometry(conv: nn.Module) -> tuple[list[int], list[int], list[int], int]:
    """(padding, stride, dilation, groups) of the folded convolution: spatially stride 1 and unpadded."""
    lead = len(conv.stride) - 2
    return [*conv.padding[:lead], 0, 0], [*conv.stride[:lead], 1, 1], [1] * (lead + 2), 1


def fold_weight(weight: torch.Tensor) -> torch.Tensor:
    """(K, C, ..., kh, kw) -> (K, 4C, ..., ceil(kh/2), ceil(kw/2)); channel ``(dy * 2 + dx) * C + c`` is tap
    ``(2a + dy, 2b + dx)`` of channel ``c`` (zero past the kernel)."""
    kh, kw = weight.shape[-2:]
    weight = F.pad(weight, (0, kw % 2, 0, kh % 2))
    k, c, *lead, h, w = weight.shape
    n = len(lead)
    blocks = weight.reshape(k, c, *lead, h // 2, 2, w // 2, 2)  # dims: K, C, lead, a, dy, b, dx
    order = (0, 3 + n, 5 + n, 1, *range(2, 2 + n), 2 + n, 4 + n)
    return blocks.permute(order).reshape(k, 4 * c, *lead, h // 2, w // 2)


def fold_input(conv: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` padded as ``conv`` pads it spatially (plus what makes the blocks whole), 2x2 blocks folded into
    channels in :func:`fold_weight`'s order, in ``dtype``: one pass over the input. The result is in
    channels-first layout: writing channels-last from a 3-channel clip gathers 3 values per pixel from far
    apart (2.4 ms against 1.3 ms for an 8x224x224 clip); oneDNN's convolution answers in channels-last either
    way, as its reordered weight asks."""
    kh, kw = conv.kernel_size[-2:]
    ph, pw = conv.padding[-2:]
    height, width = x.shape[-2:]
    out_h, out_w = (height + 2 * ph - kh) // 2 + 1, (width + 2 * pw - kw) // 2 + 1
    # padded to exactly the blocks the folded kernel reads (negative: cropped, as the strided conv never reads it)
    span_h, span_w = 2 * (out_h - 1 + (kh + 1) // 2), 2 * (out_w - 1 + (kw + 1) // 2)
    padded = F.pad(x, (pw, span_w - width - pw, ph, span_h - height - ph))
    n, c, *lead, h, w = padded.shape
    k = len(lead)
    blocks = padded.unflatten(-1, (w // 2, 2)).unflatten(-3, (h // 2, 2))  # N, C, lead, h2, dy, w2, dx
    folded = torch.empty((n, 2, 2, c, *lead, h // 2, w // 2), dtype=dtype, device=x.device)
    folded.copy_(blocks.permute(0, 3 + k, 5 + k, 1, *range(2, 2 + k), 2 + k, 4 + k))
    return folded.view(n, 4 * c, *lead, h // 2, w // 2)
