from __future__ import annotations

import copy
import pickle

import pytest
import timm
import torch
from torch import nn

from nlzoo.layers import NonLocalBlock, insert_nonlocal, nonlocal_blocks


def _tiny_resnet() -> nn.Module:
    return timm.create_model("resnet18", num_classes=5).eval()


def test_insertion_keeps_outputs_and_existing_keys() -> None:
    model = _tiny_resnet()
    keys_before = set(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    insert_nonlocal(model, ["layer3.0", "layer3.1"], instantiation="dot_product")
    assert keys_before <= set(model.state_dict())
    assert [n for n, _ in nonlocal_blocks(model)] == ["layer3.0_nonlocal", "layer3.1_nonlocal"]
    assert list(model.layer3._modules) == ["0", "0_nonlocal", "1", "1_nonlocal"]
    assert model.layer3[1].in_channels == 256 and model.layer3[1].dims == 2
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_blocks_run_after_the_named_module() -> None:
    """Making the block non-trivial changes the output exactly by the block applied to layer3.0's output."""
    model = insert_nonlocal(_tiny_resnet(), ["layer3.0"])
    block = model.layer3[1]
    nn.init.ones_(block.norm.weight)
    x = torch.randn(1, 3, 64, 64)
    captured = {}
    model.layer3[0].register_forward_hook(lambda m, a, out: captured.setdefault("out", out))
    model.layer3[2].register_forward_pre_hook(lambda m, a: captured.setdefault("in", a[0]))
    model(x)
    torch.testing.assert_close(captured["in"], block(captured["out"]))


class _Custom(nn.Module):
    """A non-Sequential parent: its forward calls its children explicitly."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 8, 3, padding=1)
        self.body = nn.Conv3d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean((2, 3, 4)))


def test_hook_path_for_non_sequential_parents_and_probe() -> None:
    model = _Custom().eval()
    x = torch.randn(1, 3, 4, 8, 8)
    expected = model(x)
    insert_nonlocal(model, ["stem"], example_input=x, instantiation="concatenation")
    assert isinstance(model.stem_nonlocal, NonLocalBlock) and model.stem_nonlocal.dims == 3
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    nn.init.ones_(model.stem_nonlocal.norm.weight)
    changed = model(x)
    assert not torch.allclose(changed, expected)
    # The hook is picklable and copies keep their own block.
    torch.testing.assert_close(pickle.loads(pickle.dumps(model))(x), changed)
    clone = copy.deepcopy(model)
    nn.init.zeros_(clone.stem_nonlocal.norm.weight)
    torch.testing.assert_close(clone(x), expected)
    torch.testing.assert_close(model(x), changed)


def test_unknown_names_and_double_insertion_are_errors() -> None:
    model = _tiny_resnet()
    with pytest.raises(KeyError, match=r"ResNet has no submodule 'layer3\.7'\. Close matches: layer3\.1, layer3\.0"):
        insert_nonlocal(model, ["layer3.7"])
    insert_nonlocal(model, ["layer2.1"])
    with pytest.raises(KeyError, match="already has a non-local block"):
        insert_nonlocal(model, ["layer2.1"])


def test_channels_can_be_given_explicitly() -> None:
    model = insert_nonlocal(_Custom(), ["body"], channels={"body": 8}, dims=3, subsample=False)
    assert model.body_nonlocal.in_channels == 8 and model.body_nonlocal.pool is None
    with pytest.raises(ValueError, match="cannot infer the feature dims"):
        insert_nonlocal(nn.Sequential(nn.Linear(4, 4)), ["0"])
