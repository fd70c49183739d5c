"""Keypoint skeletons: joint names, limbs, left/right mirror pairs and OKS sigmas (COCO person by default).

Everything that depends on the joint layout (flip augmentation, flip-test, OKS, drawing) reads it from one
:class:`Skeleton`, so another skeleton (K joints) is a new instance, not new code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)  # fmt: skip
# COCO's `categories[0].skeleton` (1-indexed in the JSON), here 0-indexed.
COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
# Per-joint OKS sigmas of the COCO keypoint benchmark (pycocotools cocoeval.py, kpt_oks_sigmas).
COCO_OKS_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087,
    0.089, 0.089,
)  # fmt: skip

_SIDES = (("left", "right"), ("l_", "r_"))


@dataclass(frozen=True)
class Skeleton:
    """A joint layout.

    Args:
        names: joint names in heatmap-channel order.
        edges: limbs as 0-indexed joint pairs (for drawing).
        oks_sigmas: per-joint OKS sigmas (``None`` when the benchmark defines none).
    """

    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ()
    oks_sigmas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.names)
        bad = [e for e in self.edges if not all(0 <= j < k for j in e)]
        if bad:
            raise ConfigError(f"skeleton edges {bad} refer to joints outside 0..{k - 1}")
        if self.oks_sigmas is not None and len(self.oks_sigmas) != k:
            raise ConfigError(f"{len(self.oks_sigmas)} OKS sigmas for {k} joints")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """``flip_index[k]``: the joint that ``k`` becomes in a mirrored image (``left_x`` <-> ``right_x``)."""
        position = {name: i for i, name in enumerate(self.names)}
        out = []
        for i, name in enumerate(self.names):
            mirrored = _mirror(name)
            out.append(position.get(mirrored, i) if mirrored else i)
        return tuple(out)

    @classmethod
    def from_coco_category(cls, category: Mapping[str, Any]) -> Skeleton:
        """The skeleton of a COCO ``categories`` entry (``keypoints`` names, 1-indexed ``skeleton``).

        OKS sigmas are COCO's when the names are COCO's 17 person joints, else ``None``.
        """
        names = tuple(category.get("keypoints") or ())
        if not names:
            raise ConfigError(f"category {category.get('name', category.get('id'))!r} lists no keypoint names")
        edges = tuple((int(a) - 1, int(b) - 1) for a, b in category.get("skeleton") or ())
        sigmas = COCO_OKS_SIGMAS if names == COCO_KEYPOINT_NAMES else None
        return cls(names=names, edges=edges, oks_sigmas=sigmas)


def _mirror(name: str) -> str | None:
    for left, right in _SIDES:
        if name.startswith(left):
            return right + name[len(left) :]
        if name.startswith(right):
            return left + name[len(right) :]
    return None


COCO_PERSON = Skeleton(names=COCO_KEYPOINT_NAMES, edges=COCO_SKELETON, oks_sigmas=COCO_OKS_SIGMAS)


def default_skeleton(num_joints: int) -> Skeleton | None:
    """COCO's person skeleton for 17 joints; ``None`` for other joint counts (no built-in layout)."""
    return COCO_PERSON if num_joints == COCO_PERSON.num_joints else None
