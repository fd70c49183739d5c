"""COCO detection data: the synthetic generator, targets, flips, and everything bad input can do."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from nlzoo.data.coco_detection import CocoDetectionDataModule, CocoDetectionDataset, _clip_xyxy, read_coco_detection
from nlzoo.data.synthetic_detection import (
    LABEL_NAMES,
    SyntheticDetectionDataModule,
    SyntheticDetectionSpec,
    ensure_synthetic_detection,
)
from nlzoo.models.skeleton import COCO_PERSON


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = SyntheticDetectionSpec(num_train=12, num_val=4, size=(96, 96), seed=3)
    return ensure_synthetic_detection(tmp_path_factory.mktemp("det") / "data", spec)


def test_synthetic_files_are_real_coco(synthetic: Path) -> None:
    instances = json.loads((synthetic / "annotations" / "instances_train.json").read_text())
    people = json.loads((synthetic / "annotations" / "person_keypoints_train.json").read_text())
    assert [c["name"] for c in instances["categories"]] == list(LABEL_NAMES[1:])
    kinds = {type(a["segmentation"]).__name__ for a in instances["annotations"]}
    assert kinds == {"list", "dict"}  # polygons and compressed RLE
    annotated = {a["image_id"] for a in instances["annotations"]}
    assert len(annotated) < len(instances["images"])  # some images have no objects
    assert people["categories"][0]["keypoints"] == list(COCO_PERSON.names)
    assert any(0 in a["keypoints"][2::3] for a in people["annotations"])  # unlabelled joints
    modes = {Image.open(synthetic / "images" / "train" / i["file_name"]).mode for i in instances["images"]}
    assert {"L", "RGBA", "RGB"} <= modes
    with pytest.raises(ValueError, match="not generated with this spec"):
        ensure_synthetic_detection(synthetic, SyntheticDetectionSpec(num_train=13, num_val=4, size=(96, 96)))


def test_samples_are_what_torchvision_detectors_take(synthetic: Path) -> None:
    module = SyntheticDetectionDataModule(str(synthetic), num_train_images=12, num_val_images=4, image_size=(96, 96))
    module.spec = SyntheticDetectionSpec(num_train=12, num_val=4, size=(96, 96), seed=3)
    module.setup("validate")
    assert module.num_classes == 5 and module.label_names[4] == "person"
    dataset = module.datasets["val"]
    assert len(dataset) == 4  # evaluation keeps images without objects
    for i in range(len(dataset)):
        image, target = dataset[i]
        assert image.shape == (3, 96, 96) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
        n = len(target["labels"])
        assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, 96, 96)
        for box, mask in zip(target["boxes"], target["masks"], strict=True):
            ys, xs = np.nonzero(mask.numpy())
            assert abs(xs.min() - box[0]) <= 2 and abs(ys.max() + 1 - box[3]) <= 2  # masks agree with boxes


def test_training_flip_swaps_left_and_right_keypoints(synthetic: Path) -> None:
    found = read_coco_detection(
        synthetic / "annotations" / "person_keypoints_train.json", synthetic / "images" / "train", targets="keypoints"
    )
    images = [i for i in found.images if i.annotations]
    plain = CocoDetectionDataset(images, targets="keypoints", skeleton=found.skeleton)
    flipped = CocoDetectionDataset(images, targets="keypoints", skeleton=found.skeleton, train=True, flip_prob=1.0)
    image, target = plain[0]
    mirror, mirrored = flipped[0]
    torch.testing.assert_close(mirror, image.flip(-1))
    width = image.shape[-1]
    torch.testing.assert_close(mirrored["boxes"][:, 0], width - target["boxes"][:, 2])
    left, right = COCO_PERSON.names.index("left_wrist"), COCO_PERSON.names.index("right_wrist")
    kp, kq = target["keypoints"][0], mirrored["keypoints"][0]
    if kp[right, 2] > 0:
        torch.testing.assert_close(kq[left, 0], width - kp[right, 0])
    assert torch.equal(kq[:, 2], kp[list(COCO_PERSON.flip_index), 2])
    assert (kq[kq[:, 2] == 0] == 0).all()  # unlabelled joints stay (0, 0, 0)


def _write_bad_dataset(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    images.mkdir(parents=True)
    Image.new("RGBA", (40, 30), (10, 20, 30, 128)).save(images / "rgba.png")
    Image.new("L", (40, 30), 100).save(images / "grey.png")
    (images / "broken.png").write_bytes(b"not a png")
    polygon = [[5, 5, 20, 5, 20, 20, 5, 20]]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [5, 5, 15, 15], "segmentation": polygon},  # good
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [10, 10, 0, 5], "segmentation": polygon},  # degenerate
        {"id": 3, "image_id": 1, "category_id": 7, "bbox": [50, 40, 10, 10], "segmentation": polygon},  # outside
        {"id": 4, "image_id": 1, "category_id": 99, "bbox": [5, 5, 10, 10], "segmentation": polygon},  # unknown cat
        {"id": 5, "image_id": 1, "category_id": 7, "bbox": [30, 20, 30, 30], "segmentation": polygon},  # clipped
        {"id": 6, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},  # no segmentation
        {"id": 7, "image_id": 42, "category_id": 7, "bbox": [1, 1, 5, 5], "segmentation": polygon},  # no image
        {"id": 8, "image_id": 3, "category_id": 7, "bbox": [1, 1, 5, 5], "segmentation": polygon},
    ]
    data = {
        "images": [
            {"id": 1, "file_name": "rgba.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "grey.png", "width": 40, "height": 30},
            {"id": 3, "file_name": "broken.png", "width": 40, "height": 30},
            {"id": 4, "file_name": "missing.png", "width": 40, "height": 30},
        ],
        "annotations": anns,
        "categories": [{"id": 7, "name": "thing"}],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return path, images


def test_bad_annotations_and_images_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, images = _write_bad_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        found = read_coco_detection(path, images, targets="masks")
    text = caplog.text
    for reason in ("empty or outside the image", "categories not in", "without a segmentation", "unknown images"):
        assert reason in text
    assert "images whose file is missing (ids 4)" in text
    assert found.label_names == ["__background__"] + ["N/A"] * 6 + ["thing"]
    first = found.images[0]
    assert [a["id"] for a in first.annotations] == [1, 5] and first.annotations[1]["box"] == (30.0, 20.0, 40.0, 30.0)
    dataset = CocoDetectionDataset(found.images, targets="masks")
    image, target = dataset[1]  # greyscale, no objects: an empty target as torchvision expects
    assert image.shape == (3, 30, 40) and target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 30, 40)
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        _, after_broken = dataset[2]  # the unreadable image is replaced by the next one
    assert "skipping image" in caplog.text and after_broken["image_id"] == 1
    module = CocoDetectionDataModule(str(path), train_images=str(images), num_workers=0)
    module.setup("fit")
    assert len(module.datasets["train"]) == 2  # without objects: left out; unreadable: found at load time
    assert module.num_classes == 8


def test_category_ids_must_leave_zero_for_the_background(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 0, "name": "x"}]}))
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="category ids must be integers >= 1"):
        read_coco_detection(path, tmp_path / "images")
    with pytest.raises(ValueError, match="give train_annotations and train_images together"):
        CocoDetectionDataModule(str(path))


@given(
    st.lists(st.floats(-1e4, 1e4) | st.sampled_from([float("nan"), float("inf")]), min_size=4, max_size=4),
    st.integers(1, 500),
    st.integers(1, 500),
)
def test_clipped_boxes_lie_in_the_image_with_positive_size(box: list[float], width: int, height: int) -> None:
    clipped = _clip_xyxy(box, width, height)
    if clipped is not None:
        x1, y1, x2, y2 = clipped
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert x2 - x1 >= 1 and y2 - y1 >= 1
