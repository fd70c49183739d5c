"""The shared inference path: prepared models compute what the plain module does, in the layout and
precision asked for."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import nlzoo
from nlzoo.layers import nonlocal_blocks
from nlzoo.models.inference import example_input, predict_batches, prepare_for_inference

# bf16 keeps 8 significant bits: per-op errors of ~0.4% that partly cancel over a network. Logits must stay
# within this fraction of the largest |logit| of fp32, with the same top-1 on every view.
BF16_LOGIT_TOLERANCE = 0.03


def _trained_looking(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = nlzoo.load(name, pretrained=False, num_classes=10).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.3, 0.8)
                m.running_var.uniform_(0.5, 1.5)
    for _, block in nonlocal_blocks(model):
        nn.init.normal_(block.norm.weight, std=0.5)
    return model


# A video network (clips) and an image network (timm ResNet with blocks), with their input shapes.
NETWORKS = {"c2d_r18_nl": (3, 4, 32, 32), "resnet18_nl_l2l3": (3, 64, 64)}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def models(request: pytest.FixtureRequest) -> tuple[nn.Module, nn.Module, tuple[int, ...]]:
    name, shape = request.param, NETWORKS[request.param]
    plain = _trained_looking(name)
    prepared = prepare_for_inference(_trained_looking(name), example=torch.zeros(1, *shape))
    return plain, prepared, shape


def test_prepared_models_are_folded_channels_last_and_equal_in_fp32(models) -> None:
    plain, prepared, shape = models
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in prepared.modules())
    convs = [m for m in prepared.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
    layout = torch.channels_last_3d if len(shape) == 4 else torch.channels_last
    assert convs and all(c.weight.is_contiguous(memory_format=layout) for c in convs)
    views = torch.randn(5, *shape)
    with torch.no_grad():
        expected = plain(views)
    actual = torch.cat(list(predict_batches(prepared, views, batch_size=2, precision="fp32")))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_bf16_logits_are_within_the_stated_tolerance_with_the_same_top1(models) -> None:
    plain, prepared, shape = models
    views = torch.randn(6, *shape)
    with torch.no_grad():
        reference = plain(views)
    bf16 = torch.cat(list(predict_batches(prepared, views, batch_size=3, precision="bf16")))
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, reference)  # it really ran in bf16
    assert (bf16 - reference).abs().max() <= BF16_LOGIT_TOLERANCE * reference.abs().max()
    assert torch.equal(bf16.argmax(-1), reference.argmax(-1))


class _Ops(TorchDispatchMode):
    """Counts the aten ops of a forward pass and keeps the copies' (source dtype, result dtype, shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.copies: list[tuple[torch.dtype, torch.dtype, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops[func.overloadpacket.__name__] += 1
        if func.overloadpacket.__name__ in ("_to_copy", "clone", "copy_", "contiguous"):
            self.copies.append((args[0].dtype, out.dtype, tuple(out.shape)))
        return out


@pytest.mark.parametrize("batch", [1, 2])
def test_no_layout_round_trips_through_the_network_and_its_nonlocal_blocks(models, batch: int) -> None:
    _, prepared, shape = models
    # As decoded: NC(D)HW; the stem's channels-last weight sets the layout. Batch 1 is the case PyTorch's own
    # size rule sent to a native kernel that answers in NCDHW (nlzoo.models.conv_backend routes it to oneDNN).
    x = torch.randn(batch, *shape)
    layouts = []
    hooks = [b.register_forward_hook(lambda m, a, out: layouts.append(out)) for _, b in nonlocal_blocks(prepared)]
    with torch.no_grad(), _Ops() as fp32:
        prepared(x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        prepared(x)  # the first half-precision call makes the weight copies
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), _Ops() as bf16:  # autocast's cache is gone
        prepared(x)
    for hook in hooks:
        hook.remove()
    # In bf16 the stem's 2x2 pixel blocks go into channels once (nlzoo.models.space_to_depth), where oneDNN runs
    # it: with oneDNN's bf16 kernels (CPUs with AVX512-BW/VL/DQ or AVX-NE-CONVERT), else PyTorch's path runs it.
    onednn_bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    for ops, folding in ((fp32, False), (bf16, onednn_bf16)):
        folds = [c for c in ops.copies if c[2][:4] == (batch, 2, 2, 3)]
        assert len(folds) == int(folding)
        ops.copies = [c for c in ops.copies if c not in folds]
    assert fp32.copies == []  # not one layout copy in fp32
    convs = [m for m in prepared.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
    assert fp32.ops["_convolution_pointwise"] == len(convs)  # all on oneDNN
    conv_weights = {tuple(m.weight.shape) for m in convs}
    assert bf16.copies and all(src != dst for src, dst, _ in bf16.copies)  # only dtype casts
    assert not [c for c in bf16.copies if c[2] in conv_weights]  # and no convolution weight is cast again
    layout = torch.channels_last_3d if len(shape) == 4 else torch.channels_last
    # PyTorch's native bf16 path answers in NC(D)HW: emulated bf16 warns anyway (nlzoo.precision).
    checked = layouts if onednn_bf16 else layouts[: len(layouts) // 3]
    assert checked and all(out.is_contiguous(memory_format=layout) for out in checked)


def test_predict_batches_keeps_autocast_inside_each_batch(models) -> None:
    _, prepared, shape = models
    for out in predict_batches(prepared, torch.randn(4, *shape), batch_size=2, precision="bf16"):
        assert not torch.is_autocast_enabled("cpu") and out.dtype == torch.float32
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        next(predict_batches(prepared, torch.randn(1, *shape), batch_size=0))


def test_the_folding_example_comes_from_the_data_config() -> None:
    model = nlzoo.load("c2d_r18_nl", pretrained=False)
    cfg = model.nlzoo_config.data_config
    assert example_input(model).shape == (1, 3, cfg.num_frames, *cfg.crop_size)
    assert example_input(nn.Conv2d(3, 3, 1)) is None
    unconfigured = prepare_for_inference(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    assert isinstance(unconfigured[1], nn.BatchNorm2d)  # no example: nothing is folded, nothing breaks
