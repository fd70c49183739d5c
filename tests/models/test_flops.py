"""FLOP counting: non-local blocks counted exactly on CPU (SDPA included) and on the meta device alike."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

import nlzoo
from nlzoo.layers import NonLocalBlock
from nlzoo.models.flops import count_flops, forward_flops


def _block_flops(c: int, t: int, h: int, w: int) -> int:
    """The embedded-Gaussian block's multiply-adds x 2: theta, phi, g, out 1x1 convs and the two products."""
    d, n, m = c // 2, t * h * w, t * (h // 2) * (w // 2)
    convs = 2 * c * d * (n + m + m) + 2 * d * c * n
    return convs + 2 * 2 * n * m * d


def test_a_cpu_block_count_includes_the_sdpa_pairwise_product() -> None:
    block = NonLocalBlock(16).eval()
    x = torch.randn(1, 16, 2, 8, 8)
    count = count_flops(block, lambda: block(x))
    assert count.total == _block_flops(16, 2, 8, 8)
    assert count.pairwise_counted and count.nonlocal_blocks == count.total
    with FlopCounterMode(display=False) as plain:  # what the counter alone sees on CPU: no pairwise term
        block(x)
    assert plain.get_total_flops() < count.total


def test_meta_device_counts_equal_real_counts() -> None:
    real = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=5).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        expected = count_flops(real, lambda: real(x))
    with torch.device("meta"):
        meta = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=5)
    counted = forward_flops(meta, (3, 4, 64, 64))
    assert counted == expected
    assert counted.pairwise_counted and 0 < counted.nonlocal_blocks < counted.total
    assert not meta.training


def test_a_training_step_counts_the_backward_of_sdpa_too() -> None:
    block = NonLocalBlock(16)
    torch.nn.init.normal_(block.norm.weight)
    x = torch.randn(2, 16, 2, 8, 8, requires_grad=True)
    step = count_flops(block, lambda: block(x).sum().backward())
    with FlopCounterMode(display=False) as plain:
        block(x).sum().backward()
    b, n, m, d = 2, 2 * 8 * 8, 2 * 4 * 4, 8
    pairwise_forward = 2 * 2 * b * n * m * d  # q k^T and a v
    # torch's SDPA backward formula: 5 products (scores recomputed, dV, dP, dQ, dK), 2.5 x the forward's 2
    assert step.total - plain.get_total_flops() == pairwise_forward + 5 * pairwise_forward // 2


def test_prepared_networks_count_like_plain_ones_at_inference() -> None:
    """Prepared convolutions run as oneDNN ops (with post-ops) the counter has no formula of its own for; the
    stem runs folded in bf16 (nlzoo.models.space_to_depth), its 7x7 kernel padded to 8x8: those zero taps count."""
    from nlzoo.models.inference import prepare_for_inference

    model = nlzoo.create_model("i3d_r18_nl", num_classes=5).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    plain = count_flops(model, lambda: model(x))
    stem = count_flops(model.conv1, lambda: model.conv1(x)).total
    prepared = prepare_for_inference(model, example=x)
    folded = plain.total - stem + stem * (4 * 4 * 4) // (7 * 7)  # 3 channels x 7x7 -> 12 x 4x4
    # fp32 never folds; without oneDNN bf16 kernels (CPUs without AVX512-BW/VL/DQ) bf16 takes PyTorch's path
    bf16_total = folded if torch.ops.mkldnn._is_mkldnn_bf16_supported() else plain.total
    for precision, total in ((None, plain.total), (torch.bfloat16, bf16_total)):
        with torch.inference_mode(), torch.autocast("cpu", dtype=precision or torch.float32, enabled=bool(precision)):
            counted = count_flops(prepared, lambda: prepared(x))
        assert counted.nonlocal_blocks == plain.nonlocal_blocks and counted.pairwise_counted
        assert counted.total == total
