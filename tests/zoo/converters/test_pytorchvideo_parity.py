"""pytorchvideo is a real reference: its own hub nets, converted, give the same logits in nlzoo.

pytorchvideo's c2d_r50 / i3d_r50 (models/hub/resnet.py) have nlzoo's stem, pools and kernels; its head
average-pools a fixed (4, 7, 7) window, the global pool at 8x224x224. The fast test passes its
``head_pool_kernel_size`` for 64 px clips (still pytorchvideo's own net); the 224 px test uses the hub
configuration unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pytorchvideo.models import hub

import nlzoo
from nlzoo.zoo import convert_checkpoint


def _random_reference(name: str, **kwargs: int | tuple[int, ...]) -> torch.nn.Module:
    torch.manual_seed(3)
    net = getattr(hub, name)(pretrained=False, **kwargs)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm3d):  # make every BN statistic matter
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _convert(reference: torch.nn.Module, name: str, tmp_path: Path) -> torch.nn.Module:
    checkpoint = tmp_path / f"{name}.pyth"
    torch.save({"model_state": reference.state_dict()}, checkpoint)  # as pytorchvideo's hub stores it
    return nlzoo.load(convert_checkpoint("pytorchvideo", name, checkpoint, tmp_path / name)).eval()


@pytest.mark.parametrize("name", ["c2d_r50", "i3d_r50"])
def test_converted_hub_net_gives_pytorchvideos_logits_on_small_clips(tmp_path: Path, name: str) -> None:
    reference = _random_reference(name, head_pool_kernel_size=(4, 2, 2))
    converted = _convert(reference, name, tmp_path)
    clip = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        want, got = reference(clip), converted(clip)
    assert want.shape == got.shape == (2, 400)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_converted_hub_i3d_matches_at_the_hub_resolution(tmp_path: Path) -> None:
    reference = _random_reference("i3d_r50")  # the hub configuration, head pool (4, 7, 7)
    converted = _convert(reference, "i3d_r50", tmp_path)
    clip = torch.randn(1, 3, 8, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(converted(clip), reference(clip), rtol=1e-4, atol=1e-4)
