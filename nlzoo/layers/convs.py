"""Convolution classes by number of positional dims, shared by the block and its parts."""

from torch import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
