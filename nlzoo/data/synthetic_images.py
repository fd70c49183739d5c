"""A synthetic image dataset that needs a long-range relation: "do the marks in two opposite corners match?"

Each image shows a noisy grey background with grey distractor squares and two small coloured marks, one
near a corner and one near the opposite corner (top-left / bottom-right or top-right / bottom-left, at
random). The label is whether the two marks have the same colour. Colours come from a palette of
``num_colours`` and both marks' colours are uniformly distributed in either class, so neither mark alone
says anything about the label: only the relation between two patches a diagonal apart does.

What that asks of a network: a convolutional network must carry one mark's colour across the image,
layer after layer, to where the other one is seen. Features that never see both marks add up, after global
average pooling and a linear head, to a logit g(colour A) + h(colour B), and "same colour" is not such a
sum, so they can reach only about 1/2 + 1/(2 * num_colours) accuracy (58% with 6 colours). A non-local
block relates the two positions in a single step (the paper's Eq. 1). Unlike the video version
(:mod:`nlzoo.data.synthetic`), the receptive field of a deep enough ResNet does span a small image, so this
is a task on which the block should help, not a proof that a local network fails.

Images are PNG files in class folders (``<split>/<class>/<nnnnn>.png``), read through the same path as real
data. Generation is deterministic given the spec (byte-identical files) and fast (well under 1 ms per image).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .synthetic_common import LABEL_NAMES, PALETTE, SPLITS, SplitSpec, ensure_dataset, write_dataset


@dataclass(frozen=True)
class SyntheticImageSpec(SplitSpec):
    """What to generate (recorded in ``meta.json`` so a different spec is never silently reused).

    Args:
        num_train: training images.
        num_val: validation images.
        num_test: test images.
        size: (H, W) in pixels.
        num_colours: palette size (2..8); more colours lower what sums of local evidence can reach.
        mark_size: side of the two coloured marks, in pixels.
        corner: side of the corner regions the marks lie in.
        margin: minimum distance of the marks from the border, so mild crops keep them.
        distractors: grey squares per image, anywhere.
        noise: standard deviation of the per-pixel background noise (0-255 scale).
        seed: everything is a function of this seed.
    """

    num_train: int = 512
    num_val: int = 128
    num_test: int = 128
    size: tuple[int, int] = (64, 64)
    num_colours: int = 6
    mark_size: int = 6
    corner: int = 16
    margin: int = 4
    distractors: int = 4
    noise: float = 12.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_colours <= len(PALETTE):
            raise ConfigError(f"num_colours must be in 2..{len(PALETTE)}; got {self.num_colours}")
        if self.corner < self.margin + self.mark_size:
            raise ConfigError(f"corner={self.corner} leaves no room for a {self.mark_size}px mark and the margin")
        if min(self.size) < 2 * self.corner:
            raise ConfigError(f"size {self.size} is too small for two {self.corner}px corner regions")
        if min(self.num_train, self.num_val, self.num_test) < 0 or self.num_train < 1:
            raise ConfigError("image counts must be >= 0, with at least one training image")


def render_image(spec: SyntheticImageSpec, rng: np.random.Generator, *, same: bool) -> np.ndarray:
    """One image as (H, W, 3) uint8."""
    (h, w), s = spec.size, spec.mark_size
    image = rng.uniform(30, 90) + rng.normal(0.0, spec.noise, size=(h, w, 3))
    for _ in range(spec.distractors):
        side = int(rng.integers(s - 2, s + 3))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        image[y : y + side, x : x + side] = rng.uniform(110, 210)
    first = int(rng.integers(spec.num_colours))
    second = first if same else int((first + rng.integers(1, spec.num_colours)) % spec.num_colours)
    for (y, x), colour in zip(mark_positions(spec, rng), (first, second), strict=True):
        image[y : y + s, x : x + s] = np.asarray(PALETTE[colour], dtype=float) + rng.uniform(-15, 15, size=3)
    return np.clip(image, 0, 255).astype(np.uint8)


def mark_positions(spec: SyntheticImageSpec, rng: np.random.Generator) -> tuple[tuple[int, int], tuple[int, int]]:
    """Top-left pixels of the two marks: one in a random corner region, the other in the opposite one."""
    (h, w), s, c, m = spec.size, spec.mark_size, spec.corner, spec.margin
    flip_y, flip_x = (bool(b) for b in rng.integers(0, 2, size=2))
    near = rng.integers(m, c - s + 1, size=2)  # offset from the first corner
    far = rng.integers(m, c - s + 1, size=2)  # offset from the opposite corner

    def place(offset: np.ndarray, at_bottom: bool, at_right: bool) -> tuple[int, int]:
        y = h - s - int(offset[0]) if at_bottom else int(offset[0])
        x = w - s - int(offset[1]) if at_right else int(offset[1])
        return y, x

    return place(near, flip_y, flip_x), place(far, not flip_y, not flip_x)


def write_synthetic_images(root: str | os.PathLike[str], spec: SyntheticImageSpec) -> Path:
    """Write the dataset under ``root`` (atomically: a temporary folder renamed at the end).

    Layout: ``<split>/<class>/<nnnnn>.png`` for the splits train / val / test (classes ``different_colour``
    and ``same_colour``, balanced), ``labels.txt`` and ``meta.json`` (the spec).

    Raises:
        FileExistsError: ``root`` already exists.
    """

    def fill(tmp: Path) -> None:
        for split_id, split in enumerate(SPLITS):
            for name in LABEL_NAMES:
                (tmp / split / name).mkdir(parents=True)
            labels = np.random.default_rng([spec.seed, split_id]).permutation(np.arange(spec.count(split)) % 2)
            for i, label in enumerate(labels):
                rng = np.random.default_rng([spec.seed, split_id, i])
                pixels = render_image(spec, rng, same=bool(label))
                Image.fromarray(pixels).save(tmp / split / LABEL_NAMES[label] / f"{i:05d}.png", format="PNG")

    return write_dataset(root, spec, fill)


def ensure_synthetic_images(root: str | os.PathLike[str], spec: SyntheticImageSpec) -> Path:
    """Generate the dataset unless ``root`` already holds exactly this spec.

    Raises:
        ValueError: ``root`` holds something else (another spec, or no ``meta.json``).
    """
    return ensure_dataset(root, spec, write_synthetic_images)
