"""The family's presets: exact fast paths against the papers' straightforward formulas, identity at init, and
the combinations that are rejected."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlzoo.errors import ConfigError, UnknownNameError
from nlzoo.layers import NonLocalBlock, build_block, list_presets

from .reference_family import REFERENCES, criss_cross, criss_cross_mask
from .test_nonlocal_block import _LargestTensor

PRESETS = ["gc", "dnl", "ann_apnb", "criss_cross", "efficient"]
SHAPES = {1: (2, 8, 12), 2: (2, 8, 5, 7), 3: (2, 8, 3, 4, 5)}
DIMS = {"criss_cross": [2, 3]}


def _randomised(block: NonLocalBlock) -> NonLocalBlock:
    """Random parameters everywhere (the zero-initialised ones included) so every term reaches the output."""
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.4)
    return block


def test_every_paper_has_a_preset() -> None:
    assert {"nonlocal", *PRESETS} <= set(list_presets())


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_fast_path_matches_the_papers_formula(preset: str, dims: int) -> None:
    if dims not in DIMS.get(preset, [1, 2, 3]):
        pytest.skip("rejected combination (tested below)")
    block = _randomised(build_block(preset, 8, dims=dims)).double()
    x = torch.randn(SHAPES[dims], dtype=torch.float64, requires_grad=True)
    out, ref = block(x), REFERENCES[preset](block, x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    params = [x, *block.parameters()]
    grads = torch.autograd.grad(out.square().sum(), params)
    ref_grads = torch.autograd.grad(ref.square().sum(), params)
    scale = max(g.abs().max().item() for g in ref_grads)
    for g, rg in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, rg, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("preset", PRESETS)
def test_gradcheck_float64(preset: str) -> None:
    block = _randomised(build_block(preset, 4, dims=2)).double().eval()
    x = torch.randn(1, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("dims", [2, 3])
def test_new_block_is_the_identity(preset: str, dims: int) -> None:
    block = build_block(preset, 16, dims=dims)
    x = torch.randn((*SHAPES[dims][:1], 16, *SHAPES[dims][2:]))
    assert torch.equal(block(x), x)
    assert torch.equal(block.eval()(x), x)


def test_gc_channel_mul_starts_at_half_as_mmcv() -> None:
    block = build_block("gc", 8, dims=2, fusion_args={"fusion_types": ("channel_mul", "channel_add")})
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(block(x), x / 2)
    assert {"channel_mul_conv.1.weight", "channel_add_conv.3.bias", "conv_phi.weight"} <= set(block.state_dict())
    assert block.channel_mul_conv[1].weight.shape == (2, 1, 1)  # LayerNorm([C * ratio, 1, 1]) as mmcv


@pytest.mark.parametrize("preset", ["gc", "criss_cross", "efficient", "ann_apnb"])
def test_no_n_by_n_tensor(preset: str) -> None:
    """Forward and backward hold nothing near B * N * N elements (N = 1024 positions)."""
    block = _randomised(build_block(preset, 16, dims=3))
    x = torch.randn(2, 16, 4, 16, 16, requires_grad=True)
    with _LargestTensor() as probe:
        block(x).sum().backward()
    n = 4 * 16 * 16
    assert probe.largest < n * n // 8, f"an intermediate of {probe.largest} elements"


def test_gc_context_is_linear_in_positions() -> None:
    """GC's largest intermediate is an input-sized map: O(N C), never O(N^2)."""
    block = _randomised(build_block("gc", 16, dims=2))
    x = torch.randn(2, 16, 32, 32, requires_grad=True)
    with _LargestTensor() as probe:
        block(x).sum().backward()
    assert probe.largest <= x.numel()


@settings(max_examples=12, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    t=st.integers(1, 3),
    spacetime=st.booleans(),
    recurrence=st.integers(1, 2),
)
def test_criss_cross_any_grid(h: int, w: int, t: int, spacetime: bool, recurrence: int) -> None:
    """Thin rows, single columns and single frames included: the per-axis passes equal the masked N x N map."""
    dims = 3 if spacetime else 2
    block = _randomised(build_block("criss_cross", 8, dims=dims, keys_args={"recurrence": recurrence})).double()
    grid = (t, h, w) if spacetime else (h, w)
    x = torch.randn(1, 8, *grid, dtype=torch.float64)
    torch.testing.assert_close(block(x), criss_cross(block, x), rtol=1e-10, atol=1e-10)


@settings(max_examples=10, deadline=None)
@given(h=st.integers(1, 10), w=st.integers(1, 10), scales=st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_pyramid_keys_any_grid_and_scales(h: int, w: int, scales: list[int]) -> None:
    """Scales larger than the map (adaptive pooling repeats cells) included; pooling x first = pooling embeddings."""
    block = _randomised(build_block("ann_apnb", 8, dims=2, keys_args={"scales": tuple(scales)})).double()
    x = torch.randn(2, 8, h, w, dtype=torch.float64)
    torch.testing.assert_close(block(x), REFERENCES["ann_apnb"](block, x), rtol=1e-10, atol=1e-10)


def test_criss_cross_affinity_is_the_masked_softmax() -> None:
    block = _randomised(build_block("criss_cross", 8, dims=2)).double()
    x = torch.randn(1, 8, 4, 5, dtype=torch.float64)
    weights, grid = block.affinity(x, [0, 7, 19])
    assert grid == (4, 5)
    mask = criss_cross_mask((4, 5))[[0, 7, 19]]
    assert torch.all(weights[0][~mask] == 0) and torch.all(weights[0][mask] > 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 3, dtype=torch.float64))


def test_gc_and_dnl_affinity() -> None:
    x = torch.randn(2, 8, 4, 4)
    weights, grid = _randomised(build_block("gc", 8, dims=2)).affinity(x, [0, 5])
    assert grid == (4, 4) and torch.equal(weights[:, 0], weights[:, 1])  # query-independent
    dnl = _randomised(build_block("dnl", 8, dims=2))
    w_few, _ = dnl.affinity(x, [3])
    w_all, _ = dnl.affinity(x, list(range(16)))
    torch.testing.assert_close(w_few[:, 0], w_all[:, 3])  # whitening uses every query, whichever are shown
    torch.testing.assert_close(w_all.sum(-1), torch.full((2, 16), 2.0))  # pairwise + unary softmax


def test_pyramid_key_grid_and_temporal_groups() -> None:
    block = _randomised(build_block("ann_apnb", 8, dims=3, temporal_groups=2))
    weights, grid = block.affinity(torch.randn(1, 8, 4, 9, 9), [0, 200])
    assert grid == (4, 1, 110) and weights.shape == (1, 2, 440)
    assert torch.all(weights[0, 0, 220:] == 0) and torch.all(weights[0, 1, :220] == 0)


def test_efficient_heads_and_both_orders() -> None:
    for shape in [(1, 16, 12, 12), (1, 16, 2, 2)]:  # associative order / direct order
        block = _randomised(build_block("efficient", 16, dims=2, pairwise_args={"heads": 4})).double()
        x = torch.randn(shape, dtype=torch.float64)
        torch.testing.assert_close(block(x), REFERENCES["efficient"](block, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("preset", "overrides", "error", "match"),
    [
        ("criss_cross", {"dims": 1}, ConfigError, r"need at least 2 positional axes .* use keys='all'"),
        ("gc", {"dims": 3, "temporal_groups": 2}, ConfigError, "context vector per sample; temporal groups"),
        ("criss_cross", {"dims": 3, "temporal_groups": 2}, ConfigError, "do not split into temporal groups"),
        ("gc", {"instantiation": "embedded_gaussian"}, ConfigError, "needs a query-independent instantiation"),
        ("gc", {"norm": "batch"}, ConfigError, "fusion 'gc' has none"),
        ("gc", {"inner_channels": 4}, ConfigError, "fusion_args"),
        ("gc", {"fusion_args": {"fusion_types": ("channel_plus",)}}, ConfigError, "fusion_types must be"),
        ("gc", {"fusion_args": {"ratio": 0.01}}, ConfigError, "leaves no bottleneck channels"),
        ("gc", {"fusion_args": {"ratoi": 0.5}}, ConfigError, r"fusion_args for 'gc': .*ratoi"),
        (
            "criss_cross",
            {"instantiation": "dot_product", "softmax_scale": None},
            ConfigError,
            "not one: use 'embedded_gaussian'",
        ),
        ("criss_cross", {"inner_channels": 4}, ConfigError, "g is C=8 wide"),
        ("efficient", {"pairwise_args": {"heads": 3}}, ConfigError, "heads=3 must divide"),
        ("dnl", {"pairwise_args": {"temperature": 0}}, ConfigError, "temperature must be > 0"),
        ("ann_apnb", {"keys_args": {"scales": (0, 2)}}, ConfigError, "scales must be"),
        ("ann_apnb", {"subsample": True}, ConfigError, "subsample=True contradicts keys='pyramid'"),
        ("ann_apnb", {"pool_embeddings": True}, ConfigError, "needs subsample=True"),
        ("nonlocal", {"keys": "criss_crosss"}, UnknownNameError, "unknown keys part 'criss_crosss'. Did you mean"),
        ("nonlocal", {"fusion": "gcc"}, UnknownNameError, "unknown fusion part 'gcc'. Did you mean 'gc'"),
        ("criss-cross", {}, UnknownNameError, "unknown block preset 'criss-cross'. Did you mean 'criss_cross'"),
    ],
)
def test_bad_combinations_are_rejected_with_the_reason(preset: str, overrides: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build_block(preset, 8, **{"dims": 2, **overrides})


def test_advice_works() -> None:
    """Following the messages above: keys='all' on 1D, temporal_groups=1 with GC, fusion_args ratio."""
    assert build_block("criss_cross", 8, dims=1, keys="all").keys == "all"
    assert build_block("gc", 8, dims=3, temporal_groups=1).temporal_groups == 1
    assert build_block("gc", 8, dims=2, fusion_args={"ratio": 1 / 2}).channel_add_conv[0].out_channels == 4
    assert build_block("ann_apnb", 8, dims=2, keys="subsampled", pool_embeddings=True).pool is not None
