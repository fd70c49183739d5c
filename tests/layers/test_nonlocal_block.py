from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nlzoo.layers import NonLocalBlock, list_pairwise

from .reference import pairwise_weights, reference_forward

INSTANTIATIONS = ["embedded_gaussian", "gaussian", "dot_product", "concatenation"]
SHAPES = {1: (2, 6, 16), 2: (2, 6, 8, 6), 3: (2, 6, 4, 6, 4)}


def _activate(block: NonLocalBlock) -> NonLocalBlock:
    """Give the zero-initialised norm random affine params so the output depends on y."""
    torch.nn.init.normal_(block.norm.weight)
    torch.nn.init.normal_(block.norm.bias)
    return block


def test_registry_has_the_four_instantiations() -> None:
    assert set(INSTANTIATIONS) <= set(list_pairwise())


@pytest.mark.parametrize("instantiation", INSTANTIATIONS)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("subsample", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_matches_reference_outputs_and_grads(
    instantiation: str, dims: int, subsample: bool, dtype: torch.dtype
) -> None:
    groups = 2 if dims in (1, 3) else 1
    block = NonLocalBlock(6, dims=dims, instantiation=instantiation, subsample=subsample, temporal_groups=groups)
    block = _activate(block).to(dtype)
    x = torch.randn(SHAPES[dims], dtype=dtype, requires_grad=True)
    out = block(x)
    grads = torch.autograd.grad(out.square().sum(), [x, *block.parameters()])
    ref = reference_forward(block, x)
    ref_grads = torch.autograd.grad(ref.square().sum(), [x, *block.parameters()])
    tol = {torch.float32: 1e-4, torch.float64: 1e-10}[dtype]
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    # Gradients are compared on the scale of the largest one (some, like conv_out's bias before a
    # training-mode BatchNorm, are zero up to rounding).
    scale = max(rg.abs().max().item() for rg in ref_grads)
    for g, rg in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, rg, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("instantiation", INSTANTIATIONS)
@pytest.mark.parametrize("dims", [1, 3])
def test_gradcheck_float64(instantiation: str, dims: int) -> None:
    shape = {1: (1, 4, 6), 3: (1, 4, 2, 4, 2)}[dims]
    block = _activate(NonLocalBlock(4, dims=dims, instantiation=instantiation, subsample=False)).double().eval()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("instantiation", INSTANTIATIONS)
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_new_block_is_the_identity(instantiation: str, norm: str) -> None:
    block = NonLocalBlock(8, dims=3, instantiation=instantiation, norm=norm)
    x = torch.randn(2, 8, 2, 4, 4)
    assert torch.equal(block(x), x)
    assert torch.equal(block.eval()(x), x)


def test_dot_product_takes_both_orders() -> None:
    """Associative order when d is small against N and M; direct order when d is large."""
    for dims_in, shape in [(8, (1, 8, 4, 8, 8)), (64, (1, 64, 1, 2, 2))]:
        block = _activate(NonLocalBlock(dims_in, dims=3, instantiation="dot_product", subsample=False))
        x = torch.randn(shape)
        torch.testing.assert_close(block(x), reference_forward(block, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("instantiation", ["embedded_gaussian", "gaussian"])
def test_softmax_forms_take_both_paths(instantiation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fused SDPA when the affinity would outgrow q, k and v; plain matmuls when it would not (e.g. res4)."""
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        torch.nn.functional, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    for channels, shape, fused in [(8, (1, 8, 4, 8, 8), True), (64, (1, 64, 1, 4, 4), False)]:
        block = _activate(NonLocalBlock(channels, dims=3, instantiation=instantiation, subsample=False))
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        block = block.double()
        calls.clear()
        out = block(x)
        assert bool(calls) == fused
        torch.testing.assert_close(out, reference_forward(block, x), rtol=1e-10, atol=1e-10)
        grad = torch.autograd.grad(out.square().sum(), x)[0]
        torch.testing.assert_close(grad, torch.autograd.grad(reference_forward(block, x).square().sum(), x)[0])


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any aten op produces (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("instantiation", INSTANTIATIONS)
def test_no_affinity_tensor_in_forward_and_backward(instantiation: str) -> None:
    """N x M (per sample) is never allocated: every intermediate stays far below B * N * M elements."""
    c, shape = 16, (2, 16, 4, 16, 16)  # N = 1024, M = 1024 (no subsample), inner 8
    block = _activate(NonLocalBlock(c, dims=3, instantiation=instantiation, subsample=False))
    x = torch.randn(shape, requires_grad=True)
    with _LargestTensor() as probe:
        block(x).sum().backward()
    n = 4 * 16 * 16
    assert probe.largest < n * n // 8, f"an intermediate of {probe.largest} elements (B*N*M = {2 * n * n})"


@pytest.mark.parametrize("instantiation", INSTANTIATIONS)
def test_affinity_rows_match_the_full_map(instantiation: str) -> None:
    block = _activate(NonLocalBlock(6, dims=3, instantiation=instantiation, temporal_groups=2))
    x = torch.randn(2, 6, 4, 6, 4)
    queries = [0, 17, 95]
    weights, key_grid = block.affinity(x, queries)
    assert key_grid == (4, 3, 2)
    xp = block.pool(x)
    q = (block.conv_theta(x) if block.conv_theta is not None else x).flatten(2).transpose(1, 2)
    k = (block.conv_phi(xp) if block.conv_phi is not None else xp).flatten(2).transpose(1, 2)
    per_group_q, per_group_k = q.shape[1] // 2, k.shape[1] // 2
    for row, qi in enumerate(queries):
        g = qi // per_group_q
        keys = slice(g * per_group_k, (g + 1) * per_group_k)
        expected = pairwise_weights(block, q[:, qi : qi + 1], k[:, keys])[:, 0]
        torch.testing.assert_close(weights[:, row, keys], expected, rtol=1e-5, atol=1e-6)
        outside = torch.ones(k.shape[1], dtype=torch.bool)
        outside[keys] = False
        assert torch.all(weights[:, row, outside] == 0)


def test_softmax_scale_defaults_and_override() -> None:
    assert NonLocalBlock(64, instantiation="embedded_gaussian").pairwise.softmax_scale == pytest.approx(32**-0.5)
    assert NonLocalBlock(64, instantiation="gaussian").pairwise.softmax_scale == 1.0
    assert NonLocalBlock(64, softmax_scale=1.0).pairwise.softmax_scale == 1.0
    with pytest.raises(ValueError, match="softmax_scale does not apply to the 'dot_product'"):
        NonLocalBlock(64, instantiation="dot_product", softmax_scale=0.5)


def test_gaussian_has_no_embeddings_and_authors_key_names() -> None:
    keys = set(NonLocalBlock(8, instantiation="gaussian").state_dict())
    assert not any(k.startswith(("conv_theta", "conv_phi")) for k in keys)
    keys = set(NonLocalBlock(8).state_dict())
    assert {"conv_theta.weight", "conv_phi.bias", "conv_g.weight", "conv_out.weight", "norm.weight"} <= keys
    assert NonLocalBlock(512).conv_theta.weight.shape == (256, 512, 1, 1, 1)


def test_bf16_autocast_runs_and_stays_close() -> None:
    for inst in INSTANTIATIONS:
        block = _activate(NonLocalBlock(16, dims=2, instantiation=inst)).eval()
        x = torch.randn(2, 16, 8, 8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = block(x)
        ref = block(x)
        assert ((y.float() - ref).norm() / ref.norm()).item() < 0.02, inst


def test_copy_and_pickle() -> None:
    block = _activate(NonLocalBlock(8, dims=2))
    x = torch.randn(1, 8, 4, 4)
    block.eval()
    torch.testing.assert_close(copy.deepcopy(block)(x), block(x))
    torch.testing.assert_close(pickle.loads(pickle.dumps(block))(x), block(x))


@pytest.mark.parametrize(
    ("kwargs", "x_shape", "error", "match"),
    [
        ({}, (2, 8, 4, 4), ValueError, r"expects a 5-D tensor \(B, C, T, H, W\); got shape \(2, 8, 4, 4\)"),
        ({}, (2, 6, 2, 4, 4), ValueError, "expects 8 input channels; got 6"),
        ({}, (2, 8, 0, 4, 4), ValueError, "empty positional dim"),
        ({}, (2, 8, 2, 1, 4), ValueError, "subsample=True pools"),
        (
            {"temporal_groups": 3},
            (2, 8, 4, 4, 4),
            ValueError,
            "temporal_groups=3 must divide the time length; got 4",
        ),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict, x_shape: tuple, error: type, match: str) -> None:
    block = NonLocalBlock(8, **kwargs)
    with pytest.raises(error, match=match):
        block(torch.randn(x_shape))


def test_integer_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"floating-point tensor; got dtype torch\.int64"):
        NonLocalBlock(8, dims=2)(torch.ones(1, 8, 4, 4, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inner_channels": 0}, ValueError, "inner_channels must be a positive int; got 0"),
        ({"in_channels": 1}, ValueError, r"got 0 \(the default C // 2 for in_channels=1\)"),
        (
            {"instantiation": "embeded_gaussian"},
            KeyError,
            "Did you mean 'embedded_gaussian'.*Known: concatenation",
        ),
        ({"dims": 4}, ValueError, "dims must be 1"),
        ({"norm": "layer"}, ValueError, "norm must be 'batch', 'group' or 'none'"),
        ({"dims": 2, "temporal_groups": 2}, ValueError, "temporal_groups needs a time axis"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict, error: type, match: str) -> None:
    kwargs = {"in_channels": 8, **kwargs}
    with pytest.raises(error, match=match):
        NonLocalBlock(**kwargs)


def test_affinity_rejects_out_of_range_queries() -> None:
    block = NonLocalBlock(8, dims=2)
    with pytest.raises(ValueError, match=r"flat indices in \[0, 16\)"):
        block.affinity(torch.randn(1, 8, 4, 4), [16])
