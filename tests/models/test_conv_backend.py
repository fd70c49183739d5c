"""3-D convolutions on oneDNN at fp32 CPU inference: same results as PyTorch's choice, in every setting."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import nlzoo
from nlzoo.models.conv_backend import InferenceConv2d, InferenceConv3d, conv_bn_relu, use_inference_convolutions
from nlzoo.models.inference import prepare_for_inference

CL = torch.channels_last_3d


def _swapped(conv: nn.Conv3d) -> nn.Conv3d:
    assert use_inference_convolutions(conv) == 1
    return conv


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # from mkldnn.flags() on CPU builds
def test_small_batch_one_layers_run_on_onednn_with_the_same_result() -> None:
    """1x256x4x14x14 is under PyTorch's 20480 size rule: its native kernel answers in contiguous layout."""
    conv = nn.Conv3d(256, 64, (1, 3, 3), padding=(0, 1, 1)).to(memory_format=CL).eval()
    x = torch.randn(1, 256, 4, 14, 14).contiguous(memory_format=CL)
    with torch.inference_mode():
        native = conv(x)
        fast = _swapped(conv)(x)
    assert not native.is_contiguous(memory_format=CL)  # the rule this module works around still applies
    assert fast.is_contiguous(memory_format=CL)  # oneDNN ran
    torch.testing.assert_close(fast, native, rtol=1e-4, atol=1e-4)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        assert not conv(x).is_contiguous(memory_format=CL)  # switching oneDNN off is still honoured


@settings(max_examples=25, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)),
    dilation=st.integers(1, 2),
    padding=st.integers(0, 2),
    size=st.tuples(st.integers(3, 6), st.integers(5, 9), st.integers(5, 9)),
    channels_last=st.booleans(),
    bias=st.booleans(),
)
def test_any_convolution_matches_pytorch(
    groups: int,
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int],
    dilation: int,
    padding: int,
    size: tuple[int, int, int],
    channels_last: bool,
    bias: bool,
) -> None:
    torch.manual_seed(0)
    conv = nn.Conv3d(4, 6, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    x = torch.randn(1, 4, *size)
    if channels_last:
        conv, x = conv.to(memory_format=CL), x.contiguous(memory_format=CL)
    with torch.inference_mode():
        try:
            expected = F.conv3d(x, conv.weight, conv.bias, stride, padding, dilation, groups)
        except RuntimeError as error:  # a kernel larger than the padded input: the same message either way
            with pytest.raises(RuntimeError, match=re.escape(str(error).splitlines()[0])):
                _swapped(conv)(x)
            return
        torch.testing.assert_close(_swapped(conv)(x), expected, rtol=1e-5, atol=1e-5)


def test_training_autocast_and_odd_padding_take_pytorchs_path() -> None:
    conv = _swapped(nn.Conv3d(3, 4, 3, padding=1))
    x = torch.randn(1, 3, 4, 6, 6, requires_grad=True)
    conv(x).sum().backward()  # autograd: the ordinary convolution, with its backward
    assert x.grad is not None and conv.weight.grad is not None
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x.detach()).dtype == torch.bfloat16  # autocast still decides
    same = _swapped(nn.Conv3d(3, 4, 3, padding="same"))
    circular = _swapped(nn.Conv3d(3, 4, 3, padding=1, padding_mode="circular"))
    with torch.inference_mode():
        for conv in (same, circular):
            assert conv(x.detach()).shape == (1, 4, 4, 6, 6)


def test_prepared_video_networks_use_it_and_keep_their_outputs() -> None:
    model = nlzoo.create_model("i3d_r18_nl", num_classes=5).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.inference_mode():
        expected = model(x)
    before = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv3d)}
    prepared = prepare_for_inference(model, example=x)
    after = {name: m for name, m in prepared.named_modules() if isinstance(m, nn.Conv3d)}
    assert after == before and all(type(m) is InferenceConv3d for m in after.values())  # same objects, same names
    with torch.inference_mode():
        torch.testing.assert_close(prepared(x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_are_cast_once_and_recast_when_they_change(dtype: torch.dtype, dims: int) -> None:
    torch.manual_seed(0)
    layer = nn.Conv3d if dims == 3 else nn.Conv2d
    kernel, padding = ((1, 3, 3), (0, 1, 1)) if dims == 3 else (3, 1)
    plain = layer(8, 4, kernel, padding=padding).eval()
    conv = _swapped(layer(8, 4, kernel, padding=padding).eval())
    assert isinstance(conv, InferenceConv2d if dims == 2 else InferenceConv3d)
    conv.load_state_dict(plain.state_dict())
    x = torch.randn(1, 8, 2, 6, 6) if dims == 3 else torch.randn(1, 8, 6, 6)
    casts = []
    real_to = torch.Tensor.to

    def counting_to(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self is conv.weight or self.data_ptr() == conv.weight.data_ptr():
            casts.append(args)
        return real_to(self, *args, **kwargs)

    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype):
        expected = plain(x)
        first, second = conv(x), conv(x)
    assert first.dtype == dtype
    assert torch.equal(first, expected) and torch.equal(second, expected)  # bitwise autocast's result
    with torch.no_grad():
        conv.weight.mul_(2)  # an in-place update bumps the version: the copy is made again
        plain.weight.mul_(2)
    conv.load_state_dict(plain.state_dict() | {"bias": plain.bias * 3})
    with torch.no_grad():
        plain.bias.mul_(3)
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype):
        torch.testing.assert_close(conv(x), plain(x), rtol=0, atol=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.Tensor, "to", counting_to)
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype):
            conv(x)
            conv(x)
    assert casts == []  # nothing changed since: both calls reuse the copy


def test_half_precision_copies_leave_training_and_new_parameters_alone() -> None:
    conv = _swapped(nn.Conv3d(3, 4, 1))
    x = torch.randn(1, 3, 2, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv(x).float().sum().backward()  # autograd: autocast's casts, gradients reach the fp32 weight
    assert conv.weight.grad is not None and conv.weight.grad.dtype == torch.float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        before = conv(x)
        conv.weight = nn.Parameter(torch.zeros_like(conv.weight))  # a new parameter object, maybe at the same address
        after = conv(x)
    assert before.abs().sum() > 0
    torch.testing.assert_close(after, conv.bias.to(torch.bfloat16).view(1, 4, 1, 1, 1).expand_as(after), rtol=0, atol=0)


def test_layers_built_under_inference_mode_still_run_in_half_precision() -> None:
    """Inference tensors have no version counter: their casts are not kept, and a change in place still counts."""
    with torch.inference_mode():
        conv = _swapped(nn.Conv3d(3, 4, 1))
        x = torch.randn(1, 3, 2, 4, 4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            before = conv(x)
            conv.weight.mul_(0)
            after = conv(x)
    assert before.dtype == torch.bfloat16 and before.abs().sum() > 0
    torch.testing.assert_close(after, conv.bias.to(torch.bfloat16).view(1, 4, 1, 1, 1).expand_as(after), rtol=0, atol=0)


def _unfused(conv: nn.Module, x: torch.Tensor, shortcut: torch.Tensor | None) -> torch.Tensor:
    y = F.conv3d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return torch.relu(y if shortcut is None else y + shortcut)


@settings(max_examples=25, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    batch=st.integers(1, 3),
    with_shortcut=st.booleans(),
    channels_last=st.booleans(),
    shortcut_channels_last=st.booleans(),
)
def test_fused_relu_and_shortcut_match_the_three_steps(
    groups: int,
    kernel: tuple[int, int, int],
    stride: int,
    padding: int,
    batch: int,
    with_shortcut: bool,
    channels_last: bool,
    shortcut_channels_last: bool,
) -> None:
    torch.manual_seed(0)
    conv = _swapped(nn.Conv3d(4, 6, kernel, stride=stride, padding=padding, groups=groups).eval())
    x = torch.randn(batch, 4, 4, 7, 7)
    if channels_last:
        conv, x = conv.to(memory_format=CL), x.contiguous(memory_format=CL)
    with torch.inference_mode():
        expected = _unfused(conv, x, None)
        shortcut = torch.randn_like(expected) if with_shortcut else None
        if shortcut is not None:
            shortcut = shortcut.contiguous(memory_format=CL if shortcut_channels_last else torch.contiguous_format)
            expected = _unfused(conv, x, shortcut)
        fused = conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x, shortcut)
        torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                half = conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x, shortcut)
            assert half.dtype == torch.bfloat16
            # rounded once (the unfused bf16 path rounds the convolution, then the sum)
            torch.testing.assert_close(half.float(), expected, rtol=2e-2, atol=2e-2)


class _Calls(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # from mkldnn.flags() on CPU builds
def test_fusion_steps_aside_for_anything_that_must_see_the_three_modules() -> None:
    """Unfolded BatchNorm, hooks, autograd and switched-off oneDNN all run conv, bn and relu as modules."""
    torch.manual_seed(0)
    conv = _swapped(nn.Conv3d(3, 4, 3, padding=1).eval())
    bn = nn.BatchNorm3d(4).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
    x = torch.randn(1, 3, 4, 6, 6)
    shortcut = torch.randn(1, 4, 4, 6, 6)
    with torch.inference_mode():
        expected = torch.relu(bn(F.conv3d(x, conv.weight, conv.bias, padding=1)) + shortcut)
        with _Calls() as calls:
            torch.testing.assert_close(conv_bn_relu(conv, bn, nn.ReLU(), x, shortcut), expected)
        assert "relu_" in calls.ops or "relu" in calls.ops  # unfolded BN: three steps
        seen = []
        relu = nn.ReLU()
        relu.register_forward_hook(lambda m, a, out: seen.append(out))
        torch.testing.assert_close(conv_bn_relu(conv, nn.Identity(), relu, x), torch.relu(conv(x)))
        assert len(seen) == 1  # the hook saw the ReLU run
        with torch.backends.mkldnn.flags(enabled=False), _Calls() as calls:
            conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x)
        assert "_convolution_pointwise" not in calls.ops
        with _Calls() as calls:
            conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x)
        assert calls.ops.count("_convolution_pointwise") == 1 and "relu" not in calls.ops  # one fused op
    y = conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x.requires_grad_(), shortcut)
    y.sum().backward()  # autograd: PyTorch's path, with its backward
    assert x.grad is not None and conv.weight.grad is not None


def test_reordered_weights_are_kept_per_precision_and_remade_when_they_change() -> None:
    torch.manual_seed(0)
    conv = _swapped(nn.Conv3d(8, 4, (1, 3, 3), padding=(0, 1, 1)).eval())
    x = torch.randn(1, 8, 2, 6, 6)
    precisions = [torch.float32] + [torch.bfloat16] * torch.ops.mkldnn._is_mkldnn_bf16_supported()
    reorders = []
    real = torch.ops.mkldnn._reorder_convolution_weight

    def counting(*args, **kwargs):
        reorders.append(args[0].dtype)
        return real(*args, **kwargs)

    def run(dtype: torch.dtype) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            return conv(x)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.ops.mkldnn, "_reorder_convolution_weight", counting)
        for _ in range(3):  # in turns, as a benchmark comparing precisions runs them
            for dtype in precisions:
                run(dtype)
        assert reorders == precisions  # once each
        with torch.no_grad():
            conv.weight.mul_(-1)
        for dtype in precisions:
            expected = F.conv3d(x.to(dtype), conv.weight.to(dtype), conv.bias.to(dtype), padding=(0, 1, 1))
            torch.testing.assert_close(run(dtype), expected, rtol=1e-2, atol=1e-2)
        assert reorders == precisions * 2  # the change was seen


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="oneDNN has no bf16 kernels here")
@pytest.mark.parametrize("fuse", [False, True])
def test_inputs_smaller_than_the_kernel_stay_right_in_bf16(fuse: bool) -> None:
    """A 1-frame clip through I3D's stem: PyTorch's own bf16 oneDNN kernel answers such shapes wrongly."""
    torch.manual_seed(0)
    conv = _swapped(nn.Conv3d(3, 8, (5, 7, 7), (1, 2, 2), (2, 3, 3)).eval())
    x = torch.randn(1, 3, 1, 16, 16)
    expected = F.conv3d(x, conv.weight, conv.bias, (1, 2, 2), (2, 3, 3))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv_bn_relu(conv, nn.Identity(), nn.ReLU(), x) if fuse else conv(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.relu() if fuse else expected, rtol=2e-2, atol=2e-2)
