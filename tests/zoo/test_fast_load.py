"""Loading a model folder builds on the meta device and adopts the checkpoint's tensors: the result must equal
the straightforward path (build with random init, then copy the weights in) bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

import nlzoo
from nlzoo.zoo import get_entry, load_weights
from nlzoo.zoo.factory import build_from_state_dict

from .hub_client import state_digest
from .test_factory import rewrite_weights


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=4)
    with torch.no_grad():
        for tensor in model.state_dict().values():  # move every parameter and BN statistic, like training does
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor), alpha=0.01)
    return nlzoo.save_pretrained(model, tmp_path / "m")


def test_fast_load_equals_build_then_copy(folder: Path) -> None:
    fast = nlzoo.load(folder)
    entry = get_entry("c2d_r18_nl")
    reference = entry.builder(**fast.nlzoo_config.model_args, num_classes=4)
    load_weights(reference, safetensors.torch.load_file(folder / "model.safetensors"), classifier="fc")
    assert state_digest(fast) == state_digest(reference)
    assert fast.training == reference.training
    for (name, p), (_, q) in zip(fast.named_parameters(), reference.named_parameters(), strict=True):
        assert isinstance(p, nn.Parameter) and p.requires_grad and p.device == q.device and p.dtype == q.dtype, name
    assert not any(b.is_meta for b in fast.buffers())
    x = torch.randn(1, 3, 2, 32, 32)
    torch.testing.assert_close(fast.eval()(x), reference.eval()(x), rtol=0, atol=0)


def test_fast_path_is_taken_only_for_an_exact_cover(folder: Path) -> None:
    builder = get_entry("c2d_r18_nl").builder
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    assert build_from_state_dict(builder, weights, num_classes=4) is not None
    assert build_from_state_dict(builder, weights, num_classes=5) is None  # mis-shaped head
    assert build_from_state_dict(builder, {k: v for k, v in weights.items() if k != "fc.bias"}, num_classes=4) is None
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    assert build_from_state_dict(builder, half, num_classes=4) is None  # would change the model's dtype

    def tied() -> nn.Module:
        model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        model[1].weight = model[0].weight
        return model

    assert build_from_state_dict(tied, tied().state_dict()) is None  # assign would untie them

    class Unsaved(nn.Linear):
        def __init__(self) -> None:
            super().__init__(2, 2)
            self.register_buffer("scale", torch.ones(2), persistent=False)

    assert build_from_state_dict(Unsaved, Unsaved().state_dict()) is None  # the buffer would stay on meta


def test_half_precision_folder_loads_through_the_ordinary_path(folder: Path) -> None:
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    reference = nlzoo.load(folder)
    rewrite_weights(folder, {k: v.half() if v.is_floating_point() else v for k, v in weights.items()})
    model = nlzoo.load(folder)
    assert model.conv1.weight.dtype == torch.float32
    torch.testing.assert_close(model.conv1.weight, reference.conv1.weight.half().float(), rtol=0, atol=0)
