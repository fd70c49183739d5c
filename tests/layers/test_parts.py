"""Registries of keys / fusion parts and presets, insertion by preset, the softmax path cost model and its
subnormal-free weights."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlzoo.errors import UnknownNameError
from nlzoo.layers import (
    Fusion,
    Keys,
    NonLocalBlock,
    build_block,
    insert_nonlocal,
    nonlocal_blocks,
    register_fusion,
    register_keys,
    register_preset,
)
from nlzoo.layers import presets as presets_module
from nlzoo.layers.fusion import base as fusion_base
from nlzoo.layers.keys import base as keys_base
from nlzoo.layers.pairwise import softmax

from .reference import reference_forward


@pytest.fixture
def scratch_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (keys_base, fusion_base, presets_module):
        monkeypatch.setattr(module, "_REGISTRY", dict(module._REGISTRY))


def test_new_parts_and_presets_are_registered_combinations(scratch_registries: None) -> None:
    @register_keys("first_frame")
    class FirstFrameKeys(Keys):
        """Every query sees the first frame only."""

        def key_source(self, block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, :1]

    @register_fusion("plain_add")
    class PlainAdd(Fusion):
        """z = x + y (g keeps C channels)."""

        default_norm = None

        def value_channels(self, in_channels: int, inner_channels: int, inner_given: bool) -> int:
            return in_channels

        def build(self, block: NonLocalBlock, *, value_channels: int, norm: str | None, bias: bool) -> None:
            pass

        def reset_parameters(self, block: NonLocalBlock) -> None:
            pass

        def fuse(self, block: NonLocalBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    @register_preset("first_frame_dot")
    def _preset(in_channels: int) -> dict:
        return {"keys": "first_frame", "instantiation": "dot_product", "fusion": "plain_add"}

    block = build_block("first_frame_dot", 4, dims=3)
    x = torch.randn(1, 4, 3, 2, 2)
    q = block.conv_theta(x).flatten(2).transpose(1, 2)
    k = block.conv_phi(x[:, :, :1]).flatten(2).transpose(1, 2)
    v = block.conv_g(x[:, :, :1]).flatten(2).transpose(1, 2)
    y = (q @ k.transpose(1, 2) / k.shape[1]) @ v
    torch.testing.assert_close(block(x), x + y.transpose(1, 2).reshape(x.shape))
    with pytest.raises(ValueError, match="'first_frame' is already registered"):
        register_keys("first_frame")(FirstFrameKeys)
    with pytest.raises(TypeError, match="expects a Fusion subclass"):
        register_fusion("thing")(int)  # type: ignore[arg-type]


def test_insert_by_preset_keeps_outputs_and_names() -> None:
    model = timm.create_model("resnet18", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    expected = model(x)
    insert_nonlocal(model, ["layer2.1", "layer3.1"], block="gc", fusion_args={"ratio": 1 / 16})
    assert [n for n, _ in nonlocal_blocks(model)] == ["layer2.1_nonlocal", "layer3.1_nonlocal"]
    block = model.layer3[2]
    assert block.fusion == "gc" and block.channel_add_conv[0].out_channels == 256 // 16
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_a_bad_preset_leaves_the_model_untouched() -> None:
    model = timm.create_model("resnet18", num_classes=5)
    keys = set(model.state_dict())
    with pytest.raises(UnknownNameError, match="Did you mean 'efficient'"):
        insert_nonlocal(model, ["layer2.1", "layer3.1"], block="eficient")
    assert set(model.state_dict()) == keys


def test_cost_model_picks_direct_for_the_padded_gaussian_only() -> None:
    """Issue 18: the plain Gaussian (q, k C wide, v C/2) paid for a zero-padded v in the fused kernel."""
    # res3 4x28x28 C=512 and a 2D 56x56 C=256 map, unpooled and pooled: Gaussian goes direct.
    for n, m, c in [(3136, 3136, 512), (3136, 784, 512), (3136, 3136, 256), (3136, 784, 256)]:
        assert softmax.materialise_affinity(n, m, c, c // 2)
        assert not softmax.materialise_affinity(n, m, c // 2, c // 2)  # embedded Gaussian stays fused
        assert not softmax.materialise_affinity(n, m, c, c // 2, "cuda")
    assert not softmax.materialise_affinity(1024, 1024, 16, 8)  # narrow: the softmax would dominate
    assert softmax.materialise_affinity(16, 16, 64, 32)  # affinity smaller than the embeddings


@pytest.mark.parametrize("amx", [True, False])
@pytest.mark.parametrize("bf16_instructions", [True, False])
def test_cost_model_takes_whole_bf16_products_on_cpus_that_have_them(
    bf16_instructions: bool, amx: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPU flash attention gains nothing from bf16 without AMX; the direct path's GEMMs run on the bf16 units.
    With AMX the flash kernel uses the tiles and wins at inference, not forward and backward."""
    monkeypatch.setattr(softmax, "cpu_has_bf16", lambda: bf16_instructions)
    monkeypatch.setattr(softmax, "cpu_has_amx_bf16", lambda: amx and bf16_instructions)
    bf16 = torch.bfloat16
    for n, m, c in [(3136, 784, 256), (3136, 3136, 256), (1568, 784, 512)]:  # embedded Gaussian, res3 / res4
        assert softmax.materialise_affinity(n, m, c, c, dtype=bf16, backward=True) is bf16_instructions
        inference = softmax.materialise_affinity(n, m, c, c, dtype=bf16, backward=False)
        assert inference is (bf16_instructions and not amx)
        with torch.no_grad():  # the default: whether autograd records
            assert softmax.materialise_affinity(n, m, c, c, dtype=bf16) is inference
        assert not softmax.materialise_affinity(n, m, c, c, "cuda", dtype=bf16)
    assert softmax.materialise_affinity(784, 196, 512, 512, dtype=bf16, backward=False)  # res4: affinity is small
    # the memory bound still holds: 12544 x 12544 scores are 25x the embeddings
    assert not softmax.materialise_affinity(12544, 12544, 128, 128, dtype=bf16)


@pytest.mark.parametrize("fp16_instructions", [True, False])
def test_cost_model_keeps_cpu_fp16_fused_without_fp16_instructions(
    fp16_instructions: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generic CPU fp16 products ran 30x slower than the fused kernel, even where the affinity is small."""
    monkeypatch.setattr(softmax, "cpu_has_fp16", lambda: fp16_instructions)
    fp16 = torch.float16
    assert softmax.materialise_affinity(784, 196, 512, 512, dtype=fp16) is fp16_instructions  # res4, pooled
    assert softmax.materialise_affinity(3136, 784, 512, 256, dtype=fp16) is fp16_instructions  # plain Gaussian
    assert softmax.materialise_affinity(784, 196, 512, 512, "cuda", dtype=fp16)


def test_attention_path_is_chosen_for_the_autocast_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = softmax.materialise_affinity
    monkeypatch.setattr(softmax, "materialise_affinity", lambda *a: seen.append(a[-1]) or real(*a))
    q = torch.randn(1, 64, 8)
    softmax.softmax_attention(q, q, q, 1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        softmax.softmax_attention(q, q, q, 1.0)  # fp32 q, but the products run in bf16
    assert seen == [torch.float32, torch.bfloat16]


@pytest.mark.parametrize("direct", [True, False])
def test_both_paths_stay_close_to_fp32_under_bf16_autocast(direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(softmax, "materialise_affinity", lambda *a: direct)
    torch.manual_seed(0)
    for inst in ("embedded_gaussian", "gaussian"):
        block = NonLocalBlock(32, dims=3, instantiation=inst).eval()
        torch.nn.init.normal_(block.norm.weight)
        x = torch.randn(1, 32, 2, 8, 8)
        with torch.no_grad():
            ref = reference_forward(block, x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = block(x)
        assert ((out.float() - ref).norm() / ref.norm()).item() < 0.02, inst


@pytest.mark.parametrize("direct", [True, False])
def test_gaussian_paths_both_match_the_reference(direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = softmax.materialise_affinity
    monkeypatch.setattr(softmax, "materialise_affinity", lambda *a: calls.append(real(*a)) or direct)
    block = NonLocalBlock(64, dims=2, instantiation="gaussian", subsample=False).double()
    torch.nn.init.normal_(block.norm.weight)
    x = torch.randn(1, 64, 16, 16, dtype=torch.float64, requires_grad=True)
    out, ref = block(x), reference_forward(block, x)
    assert calls
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g, rg = (torch.autograd.grad(t.square().sum(), x)[0] for t in (out, ref))
    torch.testing.assert_close(g, rg)


def _subnormal_share(t: torch.Tensor) -> float:
    return ((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).double().mean().item()


def test_plain_gaussian_weights_and_their_gradients_hold_no_subnormals() -> None:
    """Issue 18: raw x_i . x_j over pooled keys gave fp32-subnormal softmax weights, which Intel cores multiply
    ~10x slower; the direct path's weights and the gradients reaching its matrix products must be normal or 0."""
    torch.manual_seed(0)
    x = torch.randn(1, 3136, 512)  # res3 of an R50 at 4x28x28: C=512, N=3136, keys pooled to M=784
    q, k = x.clone().requires_grad_(), x[:, ::4].clone().requires_grad_()
    plain = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
    weights = softmax.softmax_affinity(q, k, 1.0)
    assert _subnormal_share(plain) > 0.05  # the case the mask exists for (12% here)
    assert _subnormal_share(weights) == 0
    torch.testing.assert_close(weights, plain, rtol=1e-5, atol=1e-27)  # dropped weights are below e^-64
    upstream = torch.randn_like(weights)
    grads = torch.autograd.grad((weights * upstream).sum(), (q, k))
    plain_grads = torch.autograd.grad((plain * upstream).sum(), (q, k))
    for grad, plain_grad in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(grad, plain_grad, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 4),
    keys=st.integers(1, 300),
    spread=st.floats(1e-3, 1e4),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_softmax_affinity_matches_the_softmax_at_any_spread(
    rows: int, keys: int, spread: float, seed: int, dtype: torch.dtype
) -> None:
    scores = torch.randn(1, rows, keys, generator=torch.Generator().manual_seed(seed), dtype=dtype) * spread
    scores = scores.requires_grad_()
    weights = softmax.softmax_affinity(scores, torch.eye(keys, dtype=dtype)[None], 1.0)  # scores @ I^T = scores
    expected = torch.softmax(scores, dim=-1)
    assert _subnormal_share(weights) == 0
    torch.testing.assert_close(weights, expected, rtol=1e-6, atol=1e-27)
    upstream = torch.randn_like(weights)
    grad, expected_grad = (torch.autograd.grad((w * upstream).sum(), scores)[0] for w in (weights, expected))
    assert _subnormal_share(grad) == 0
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-27)


def test_half_precision_scores_take_the_plain_softmax() -> None:
    """bf16 products read subnormals as 0 in hardware; a bf16 threshold at large scores would flatten the row."""
    scores = torch.tensor([[[9000.0, 8900.0, 0.0]]]).to(torch.bfloat16)
    weights = softmax.softmax_affinity(scores, torch.eye(3, dtype=torch.bfloat16)[None], 1.0)
    torch.testing.assert_close(weights, torch.softmax(scores, dim=-1), rtol=0, atol=0)


def test_compiled_block_reads_the_cost_model_as_constants() -> None:
    """Under torch.compile the CPU capability checks are constants, not functions for dynamo to trace."""
    block = NonLocalBlock(32, dims=3).eval()
    x = torch.randn(1, 32, 2, 16, 16)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        warnings.simplefilter("always")
        compiled = torch.compile(block)(x)
        eager = block(x)
    torch.testing.assert_close(compiled, eager)
    assert not [w for w in caught if "lru_cache" in str(w.message)]
