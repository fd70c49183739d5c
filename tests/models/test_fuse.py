"""BatchNorm folding: exact in fp32 up to rounding on every family, and refused wherever it would not be."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nlzoo
from nlzoo.layers import insert_nonlocal, nonlocal_blocks
from nlzoo.models import to_channels_last
from nlzoo.models.fuse import find_conv_bn_pairs, fold_batchnorm

_BN = nn.modules.batchnorm._BatchNorm


def _trained_statistics(model: nn.Module) -> nn.Module:
    """Give every BN non-trivial statistics and affine terms (fresh ones are the identity, hiding mistakes)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BN):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
    return model.eval()


def _assert_folds_exactly(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str]]:
    with torch.no_grad():
        expected = model(x)
    bns = [n for n, m in model.named_modules() if isinstance(m, _BN)]
    pairs = fold_batchnorm(model, x[:1])
    assert sorted(bn for _, bn in pairs) == sorted(bns)  # every BN of these families follows a conv
    assert not any(isinstance(m, _BN) for m in model.modules())
    with torch.no_grad():
        actual = model(x)
    scale = expected.abs().max()
    torch.testing.assert_close(actual / scale, expected / scale, rtol=0, atol=2e-5)
    return pairs


# One member of each family, with inputs just above its minimum size (S3D's stem needs 13x209x209).
FAMILIES = {
    "c2d_r18_nl": (2, 3, 4, 32, 32),
    "i3d_r18_nl": (2, 3, 4, 32, 48),
    "r2plus1d_18_nl": (1, 3, 4, 32, 32),
    "resnet18_nl": (2, 3, 64, 64),
    "simplebaseline_r18_nl_head": (1, 3, 64, 64),
    "s3d_nl": (1, 3, 13, 209, 209),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n == "s3d_nl" else []) for n in FAMILIES])
def test_folding_is_exact_on_every_family(name: str) -> None:
    model = to_channels_last(_trained_statistics(nlzoo.load(name, pretrained=False)))
    for _, block in nonlocal_blocks(model):  # an active block, so its folded norm matters
        nn.init.normal_(block.norm.weight, std=0.5)
    block_norms = {
        f"{b}.{n}" for b, block in nonlocal_blocks(model) for n, m in block.named_modules() if isinstance(m, _BN)
    }
    pairs = _assert_folds_exactly(model, torch.randn(FAMILIES[name]))
    assert block_norms and block_norms <= {bn for _, bn in pairs}  # the norm after each conv_out folds too
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last_3d) for c in convs)


def test_conv_bias_and_bn_without_affine_terms_fold() -> None:
    net = nn.Sequential(nn.Conv2d(3, 6, 3, bias=True), nn.BatchNorm2d(6, affine=False), nn.ReLU())
    _assert_folds_exactly(_trained_statistics(net), torch.randn(2, 3, 9, 9))
    assert net[0].bias is not None and isinstance(net[1], nn.Identity)


def test_transposed_convolutions_fold_along_their_output_channels() -> None:
    net = nn.Sequential(nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(6))
    _assert_folds_exactly(_trained_statistics(net), torch.randn(2, 4, 5, 5))


class _Branching(nn.Module):
    """Patterns where folding would change the result: each BN must survive."""

    def __init__(self) -> None:
        super().__init__()
        self.shared_out = nn.Conv2d(3, 4, 1)  # its output also feeds the residual sum
        self.bn_a = nn.BatchNorm2d(4)
        self.reused = nn.Conv2d(4, 4, 1)  # called twice, each call into another BN
        self.bn_b = nn.BatchNorm2d(4)
        self.bn_c = nn.BatchNorm2d(4)
        self.bn_after_relu = nn.BatchNorm2d(4)  # not fed by a conv
        self.mixed = nn.Conv2d(4, 4, 1)
        self.bn_mixed = nn.BatchNorm2d(4)  # fed by a conv once and by something else once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.shared_out(x)
        y = self.bn_a(a) + a
        y = self.bn_b(self.reused(y)) + self.bn_c(self.reused(y.relu()))
        y = self.bn_after_relu(y.relu())
        return self.bn_mixed(self.mixed(y)) + self.bn_mixed(y)


def test_branches_reuse_and_non_conv_inputs_are_not_folded() -> None:
    net = _trained_statistics(_Branching())
    assert find_conv_bn_pairs(net, torch.randn(1, 3, 5, 5)) == []
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        expected = net(x)
    assert fold_batchnorm(net, x) == []
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected)


class _Aliased(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.alias = self.bn  # the same module under a second name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alias(self.conv(x))


def test_a_bn_registered_under_two_names_is_removed_under_both() -> None:
    net = _trained_statistics(_Aliased())
    _assert_folds_exactly(net, torch.randn(2, 3, 6, 6))
    assert isinstance(net.bn, nn.Identity) and isinstance(net.alias, nn.Identity)


def test_a_block_applied_after_a_folded_bn_keeps_running() -> None:
    """GCNet's block after ``bn3`` runs as a hook of that BN; folding replaces the BN but not the block."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    insert_nonlocal(net, ["1"], block="gc", dims=2)  # a Sequential entry: the block becomes "1_nonlocal"
    residual = torchvision_basic_block()
    insert_nonlocal(residual, ["bn2"], block="gc", dims=2)  # inside a block: a hook on bn2
    for model in (net, residual):
        for _, block in nonlocal_blocks(model):
            nn.init.normal_(block.channel_add_conv[3].weight)
        _trained_statistics(model)
        x = torch.randn(2, 3 if model is net else 8, 12, 12)
        with torch.no_grad():
            before = model(x)
            assert fold_batchnorm(model, x)
            torch.testing.assert_close(model(x), before)
    assert isinstance(residual.bn2, nn.Identity)


def torchvision_basic_block() -> nn.Module:
    from torchvision.models.resnet import BasicBlock

    return BasicBlock(8, 8)


def test_training_mode_is_refused_with_the_fix() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"call model.eval\(\) first"):
        fold_batchnorm(net, torch.randn(1, 3, 5, 5))
    assert fold_batchnorm(net.eval(), torch.randn(1, 3, 5, 5)) == [("0", "1")]  # following the advice works
