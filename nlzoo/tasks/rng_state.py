"""Random-generator states stored in checkpoints, so a resumed run draws the same dropout masks.

Lightning checkpoints hold weights, optimiser, scheduler and loop state but not the global generators.
Data order and augmentation do not need them (see :class:`~nlzoo.data.EpochSampler`; nlzoo's loaders
also seed their workers from their own generator, because a resumed fit creates its first iterator at
a different point than a running one); dropout and any other ``torch.rand`` in the model do. The task
restores them at the first training epoch after loading. States are plain tensors and tuples, so
checkpoints still load with ``torch.load(weights_only=True)``. Under DDP the checkpoint holds rank 0's
states, which every rank restores. Exact for checkpoints taken at epoch ends.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch CPU and (if initialised) CUDA generator states."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the states of :func:`capture_rng_state` (CUDA only when present on both sides)."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
