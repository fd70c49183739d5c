"""Max-pooling at the input's precision under autocast."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlzoo.layers.pooling import MaxPool3d
from nlzoo.models.resnet3d import ResNet3d


def test_pools_bf16_maps_in_bf16_with_the_values_of_fp32_pooling() -> None:
    x = torch.randn(1, 8, 4, 9, 9).to(torch.bfloat16)
    pool = MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pool(x)
        upcast = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))  # what plain autocast does: fp32
    assert out.dtype == torch.bfloat16 and upcast.dtype == torch.float32
    assert torch.equal(out.float(), upcast)
    assert torch.equal(pool(x.float()), upcast)  # outside autocast: nn.MaxPool3d


def test_video_network_keeps_bf16_through_its_pools() -> None:
    model = ResNet3d(18, temporal="i3d", num_classes=3, nonlocal_after=("layer2.1",)).eval()
    dtypes = {}
    for name in ("maxpool", "pool2", "layer2.1_nonlocal.pool"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(1, 3, 4, 32, 32))
    assert dtypes == dict.fromkeys(dtypes, torch.bfloat16) and len(dtypes) == 3
