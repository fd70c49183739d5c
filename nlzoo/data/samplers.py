"""A training sampler whose order and per-item randomness depend only on (seed, epoch).

It yields ``(index, item_seed)`` keys; :class:`~nlzoo.data.video_dataset.VideoClipDataset` seeds each
sample's augmentation from ``item_seed``. Data order and augmentations are therefore the same with any
number of workers and after a resume (Lightning calls :meth:`set_epoch` with the restored epoch), and under
DDP Lightning wraps the sampler so that each rank takes a disjoint share of the same sequence.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from ..errors import ConfigError


def mix_seed(*values: int) -> int:
    """A well-spread 63-bit seed from integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(values)).generate_state(1, dtype=np.uint64)[0] >> 1)


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled (or ordered) dataset indices paired with per-item seeds, both fixed by ``seed`` and the epoch.

    Args:
        length: dataset size.
        seed: base seed (e.g. the run's ``seed_everything`` value).
        shuffle: permute the indices each epoch.
    """

    def __init__(self, length: int, *, seed: int, shuffle: bool = True) -> None:
        if length < 1:
            raise ConfigError(f"cannot sample from an empty dataset (length {length})")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = range(self.length)
        for index in order:
            yield index, mix_seed(self.seed, self.epoch, index)
