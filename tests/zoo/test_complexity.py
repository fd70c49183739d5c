"""Parameters and FLOPs of registered models, counted on the meta device."""

from __future__ import annotations

import pytest
import torch

import nlzoo
from nlzoo.models.flops import count_flops
from nlzoo.zoo.complexity import measure_complexity


def test_params_and_blocks_match_the_real_model() -> None:
    size = measure_complexity("c2d_r18_nl")
    real = nlzoo.load("c2d_r18_nl", pretrained=False)
    assert size.params == sum(p.numel() for p in real.parameters())
    assert size.nonlocal_blocks == 2 and size.input_shape == (3, 8, 224, 224)
    baseline = measure_complexity("c2d_r18")
    assert size.params > baseline.params and size.flops - baseline.flops >= size.nonlocal_flops > 0


def test_flops_match_a_real_forward_at_the_same_input() -> None:
    x = torch.randn(1, 3, 4, 64, 64)
    real = nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=7).eval()
    with torch.no_grad():
        expected = count_flops(real, lambda: real(x)).total
    assert measure_complexity("i3d_r18_nl", input_shape=(3, 4, 64, 64), num_classes=7).flops == expected


def test_a_tag_brings_its_architecture_and_input() -> None:
    default = measure_complexity("i3d_r50_nl")
    paper = measure_complexity("i3d_r50_nl.kinetics400_vnl32x2")  # 32x2 clips, time-strided stem
    assert paper.input_shape == (3, 32, 224, 224) and default.input_shape == (3, 8, 224, 224)
    assert paper.params == default.params
    assert paper.flops > default.flops


def test_unknown_names_say_what_exists() -> None:
    with pytest.raises(KeyError, match="Did you mean 'c2d_r18_nl'"):
        measure_complexity("c2d_r18_nll")
