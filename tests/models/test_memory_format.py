from __future__ import annotations

import torch
from torch import nn

from nlzoo.models import has_3d_convs, to_channels_last


def test_conv_weights_take_their_channels_last_layout_and_outputs_stay() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.Flatten(2), nn.Linear(4 * 6 * 6, 5))
    x = torch.randn(2, 3, 4, 6, 6)
    expected = net.eval()(x)
    assert has_3d_convs(net)
    assert to_channels_last(net) is net
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert net[3].weight.is_contiguous()  # 2-D parameters keep their layout
    torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-6)
    image_net = to_channels_last(nn.Conv2d(3, 4, 3))
    assert not has_3d_convs(image_net)
    assert image_net.weight.is_contiguous(memory_format=torch.channels_last)
