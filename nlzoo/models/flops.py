"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode``, non-local blocks included.

FlopCounterMode has formulas for convolutions, matmuls and the CUDA attention kernels, but not for the op
that ``scaled_dot_product_attention`` runs on CPU (``_scaled_dot_product_flash_attention_for_cpu`` and its
backward), which the embedded-Gaussian block uses: without help, a CPU count silently leaves out the
non-local pairwise work. :func:`count_flops` registers torch's own SDPA formulas for those ops and reports
whether every non-local block's pairwise product was counted.

On the ``meta`` device (no memory, no arithmetic) SDPA runs as plain matmuls, which the counter knows, so a
model built under ``torch.device("meta")`` is counted in milliseconds: see :func:`forward_flops`.
FLOPs here count a multiply-add as 2 (FlopCounterMode's convention); papers often quote multiply-adds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils.flop_counter as flop_counter
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..layers import nonlocal_blocks

PAIRWISE_OPS = ("attention", "bmm", "mm", "matmul")


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flops(
    grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any
) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _onednn_conv_flops(x_shape: Any, second: Any, third: Any, *args: Any, out_shape: Any, **kwargs: Any) -> int:
    """Both overloads: ``(X, W, B, ...)`` and ``.binary`` ``(X, other, W, B, ...)``, told apart by the third
    argument (a weight has the input's rank, a bias rank 1, or it is None)."""
    binary = third is not None and len(third) == len(x_shape)
    return flop_counter.conv_flop_count(x_shape, third if binary else second, out_shape, transposed=False)


def extra_formulas() -> dict[Any, Callable[..., int]]:
    """FLOP formulas for ops FlopCounterMode lacks, as its ``custom_mapping``: the CPU SDPA kernels and the
    oneDNN convolutions prepared networks run at inference (:mod:`nlzoo.models.conv_backend`)."""
    aten = torch.ops.aten
    formulas: dict[Any, Callable[..., int]] = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flops
        formulas[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_backward_flops
    if hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
        formulas[torch.ops.mkldnn._convolution_pointwise] = _onednn_conv_flops  # keyed by packet: both overloads
    return formulas


@dataclass(frozen=True)
class FlopCount:
    """What one counted run did.

    Attributes:
        total: FLOPs of the whole run (a multiply-add counts 2).
        nonlocal_blocks: FLOPs inside the model's non-local blocks.
        pairwise_counted: every non-local block's pairwise product (SDPA or matmul) appears in the counts,
            i.e. no block ran an op the counter has no formula for.
    """

    total: int
    nonlocal_blocks: int
    pairwise_counted: bool


def count_flops(model: nn.Module, run: Callable[[], Any]) -> FlopCount:
    """Count the FLOPs of ``run()`` (a forward, or forward + backward, of ``model``).

    Args:
        model: the network ``run`` uses; its non-local blocks are found with :func:`nlzoo.layers.nonlocal_blocks`.
        run: a callable doing the work to count.

    Returns:
        The totals, with the non-local blocks' share.
    """
    root = type(model).__name__  # FlopCounterMode's name for the model; submodules are "<root>.<dotted name>"
    names = {f"{root}.{name}" if name else root for name, _ in nonlocal_blocks(model)}
    with FlopCounterMode(display=False, custom_mapping=extra_formulas()) as counter:
        run()
    counts = counter.get_flop_counts()
    nl_flops = sum(sum(counts.get(n, {}).values()) for n in names)
    counted = all(any(any(p in str(op) for p in PAIRWISE_OPS) for op in counts.get(n, {})) for n in names)
    return FlopCount(int(counter.get_total_flops()), int(nl_flops), counted)


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> FlopCount:
    """FLOPs of one inference forward pass on a batch of one ``input_shape`` input (e.g. (3, 8, 224, 224)).

    The input is made on the model's device: build the model under ``torch.device("meta")`` to count
    without allocating weights or computing anything. The model is put in eval mode.

    A model whose ``forward`` cannot run on the meta device (a detector's NMS has data-dependent shapes)
    may define ``flops_forward(x)``, the dense work of its forward; it is counted instead, run as the
    model's forward so that its submodules keep their names in the counts.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.empty(1, *input_shape, device=device)
    model.eval()
    proxy = getattr(model, "flops_forward", None)
    with torch.no_grad():
        if proxy is None:
            return count_flops(model, lambda: model(x))
        model.forward = proxy  # an instance attribute: module hooks (and FlopCounterMode's names) still run
        try:
            return count_flops(model, lambda: model(x))
        finally:
            del model.forward
