"""2D -> 3D weight inflation (Carreira & Zisserman 2017; the NL paper initialises I3D this way).

A 2D kernel (O, I, kh, kw) becomes (O, I, t, kh, kw): repeated over t and divided by t, so a temporally
constant clip gives the 2D network's response (away from the zero-padded clip ends).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..errors import CheckpointMismatchError


def inflate_state_dict(state_dict_2d: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map a 2D ResNet state dict (torchvision / timm names) onto a 3D model with the same key names.

    Keys the 3D model does not have are an error; keys only the 3D model has (non-local blocks) are absent
    from the result, and a head of another size passes through: the caller's strict loader judges both.

    Raises:
        ValueError: a key missing from the 3D model, or shapes that are not an inflation of each other.
    """
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unknown = [k for k in state_dict_2d if k not in target]
    if unknown:
        raise CheckpointMismatchError(
            f"2D weights have keys the 3D model lacks: {unknown[:8]}{' ...' if len(unknown) > 8 else ''}"
        )
    for key, w in state_dict_2d.items():
        want = target[key].shape
        if w.dim() == 4 and len(want) == 5:
            if tuple(w.shape) != (want[0], want[1], want[3], want[4]):
                raise CheckpointMismatchError(f"{key}: 2D kernel {tuple(w.shape)} does not inflate to {tuple(want)}")
            t = want[2]
            out[key] = w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
        else:
            out[key] = w  # same-rank tensors pass through; the strict loader judges shapes (e.g. a new head)
    return out
