"""Meta-device builds that skip weight initialisers: the same architecture, nothing else skipped."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nlzoo.zoo.meta import build_on_meta
from nlzoo.zoo.registry import model_info


def test_the_architecture_is_the_real_one() -> None:
    builder = model_info("i3d_r18_nl").builder
    real, meta = builder(num_classes=5), build_on_meta(builder, num_classes=5)
    assert {k: v.shape for k, v in meta.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}
    assert all(t.is_meta for t in meta.state_dict().values())


def test_only_fills_of_meta_tensors_are_skipped() -> None:
    seen: dict[str, object] = {}

    def builder() -> nn.Module:
        layer = nn.Linear(3, 4)
        seen["init"] = nn.init.kaiming_normal_(layer.weight)  # skipped: returns the same tensor
        seen["cpu"] = torch.empty(2, device="cpu").fill_(7.0)  # real storage: still filled
        return layer

    layer = build_on_meta(builder)
    assert seen["init"] is layer.weight and layer.weight.is_meta
    assert torch.equal(seen["cpu"], torch.full((2,), 7.0))


def test_shape_errors_still_raise() -> None:
    def builder() -> nn.Module:
        torch.zeros(2, 3) @ torch.zeros(4, 5)
        return nn.Identity()

    with pytest.raises(RuntimeError):
        build_on_meta(builder)
