"""Example files for the page, generated at start-up like ``nlzoo demo``'s data (nothing is downloaded).

They live in a folder the app owns; the page offers them by name, so a request never names a path.
"""

from __future__ import annotations

from pathlib import Path

from ..data.synthetic import SyntheticVideoSpec, write_synthetic_videos
from ..data.synthetic_common import LABEL_NAMES
from ..data.synthetic_images import SyntheticImageSpec, write_synthetic_images
from ..data.synthetic_pose import generate_synthetic_pose


def write_examples(root: Path, tabs: set[str]) -> dict[str, dict[str, Path]]:
    """Generate examples under ``root`` for the page's ``tabs``; returns tab -> {shown name: file}."""
    examples: dict[str, dict[str, Path]] = {}
    if "video" in tabs:
        spec = SyntheticVideoSpec(num_train=3, num_val=0, num_test=0, num_frames=32, size=(96, 128), fps=8)
        data = write_synthetic_videos(root / "videos", spec)
        examples["video"] = {
            f"synthetic clip {i + 1} ({LABEL_NAMES[int(label)].replace('_', ' ')}, 4 s)": data / name
            for i, (name, label) in enumerate(line.split() for line in (data / "train.txt").read_text().splitlines())
        }
    if "image" in tabs:
        pose = generate_synthetic_pose(root / "pose", splits=(("val", 1),), image_size=(192, 256), max_people=2)
        marks = write_synthetic_images(
            root / "images", SyntheticImageSpec(num_train=1, num_val=0, num_test=0, size=(128, 128), corner=32)
        )
        examples["image"] = {
            "synthetic figures (for pose models)": pose / "images" / "val" / "000001.png",
            "synthetic colour marks (for classifiers)": next((marks / "train").glob("*/*.png")),
        }
    return examples
