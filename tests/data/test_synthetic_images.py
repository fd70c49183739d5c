"""The synthetic 'matching corners' images: deterministic files whose label is the relation of two far marks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nlzoo.data import SyntheticImageDataModule, SyntheticImageSpec, ensure_synthetic_images, write_synthetic_images

SPEC = SyntheticImageSpec(num_train=24, num_val=6, num_test=4, size=(48, 48), corner=14, margin=3)


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


def coloured_marks(pixels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(centre (y, x), mean colour) of each saturated blob: the marks (background and distractors are grey)."""
    saturated = (pixels.max(axis=2).astype(int) - pixels.min(axis=2)) > 90
    ys, xs = np.nonzero(saturated)
    marks = []
    for y_half in (ys < pixels.shape[0] / 2, ys >= pixels.shape[0] / 2):
        for x_half in (xs < pixels.shape[1] / 2, xs >= pixels.shape[1] / 2):
            sel = y_half & x_half
            if sel.sum() > 4:
                centre = np.array([ys[sel].mean(), xs[sel].mean()])
                marks.append((centre, pixels[ys[sel], xs[sel]].astype(float).mean(axis=0)))
    return marks


def test_generation_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = digest(write_synthetic_images(tmp_path / "a", SPEC))
    assert first == digest(write_synthetic_images(tmp_path / "b", SPEC))
    other = digest(write_synthetic_images(tmp_path / "c", SyntheticImageSpec(**{**SPEC.__dict__, "seed": 1})))
    assert first != other


def test_label_is_whether_the_far_apart_marks_share_a_colour(tmp_path: Path) -> None:
    root = write_synthetic_images(tmp_path / "data", SPEC)
    counts = {}
    for cls in ("different_colour", "same_colour"):
        files = sorted((root / "train" / cls).glob("*.png"))
        counts[cls] = len(files)
        for path in files:
            (a_pos, a_rgb), (b_pos, b_rgb) = coloured_marks(np.asarray(Image.open(path)))
            assert np.linalg.norm(a_pos - b_pos) > 0.9 * np.hypot(*SPEC.size) - 2 * SPEC.corner  # opposite corners
            same = np.abs(a_rgb - b_rgb).max() < 35  # colours vary by +-15 per channel around the palette entry
            assert same == (cls == "same_colour"), path
    assert counts == {"different_colour": 12, "same_colour": 12}
    assert (root / "labels.txt").read_text().split() == ["different_colour", "same_colour"]


def test_existing_data_is_reused_only_for_the_same_spec(tmp_path: Path) -> None:
    root = ensure_synthetic_images(tmp_path / "data", SPEC)
    assert ensure_synthetic_images(root, SPEC) == root
    with pytest.raises(ValueError, match="not generated with this spec"):
        ensure_synthetic_images(root, SyntheticImageSpec(**{**SPEC.__dict__, "num_colours": 3}))
    with pytest.raises(FileExistsError):
        write_synthetic_images(root, SPEC)
    with pytest.raises(ValueError, match="too small"):
        SyntheticImageSpec(size=(20, 20))


def test_data_module_generates_on_prepare(tmp_path: Path) -> None:
    dm = SyntheticImageDataModule(
        str(tmp_path / "syn"),
        num_train=8,
        num_val=4,
        num_test=0,
        image_size=(48, 48),
        batch_size=4,
        num_workers=0,
        model="resnet18",
        data_config={"interpolation": "bilinear"},
    )
    assert dm.num_classes == 2 and dm.label_names == ["different_colour", "same_colour"]  # before any file exists
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 48, 48) and "test" not in dm.datasets  # crops default to the images
    config = dm.resolve_data_config()
    assert (config.crop_size, config.crop_pct, config.interpolation) == ((48, 48), 1.0, "bilinear")
