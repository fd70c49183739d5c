from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from nlzoo.data import CocoKeypointsDataModule, generate_synthetic_pose
from nlzoo.data.coco_persons import read_coco_persons
from nlzoo.models.pose_codec import HeatmapCodec, apply_affine
from nlzoo.models.skeleton import COCO_PERSON


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_pose(tmp_path_factory.mktemp("pose"), splits=(("train", 6), ("val", 4)), seed=3)


def _module(root: Path, **kwargs: object) -> CocoKeypointsDataModule:
    args = {"input_size": (128, 96), "batch_size": 4, "num_workers": 0, **kwargs}
    return CocoKeypointsDataModule(
        str(root / "annotations" / "person_keypoints_train.json"),
        train_images=str(root / "images" / "train"),
        val_annotations=str(root / "annotations" / "person_keypoints_val.json"),
        val_images=str(root / "images" / "val"),
        **args,
    )


def _decoded_in_image(sample: dict[str, torch.Tensor]) -> torch.Tensor:
    codec = HeatmapCodec((128, 96), sample["target"].shape[-2:])
    coords, _ = codec.decode(sample["target"])
    return apply_affine(coords, sample["crop_to_image"])


def _ground_truth(root: Path, split: str) -> list[np.ndarray]:
    anns = json.loads((root / "annotations" / f"person_keypoints_{split}.json").read_text())["annotations"]
    return [np.array(a["keypoints"], dtype=np.float32).reshape(17, 3) for a in anns]


def test_batches_hold_crops_targets_and_what_maps_them_back(dataset: Path) -> None:
    module = _module(dataset)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (4, 3, 128, 96) and batch["target"].shape == (4, 17, 32, 24)
    assert batch["target_weight"].shape == (4, 17) and batch["crop_to_image"].shape == (4, 2, 3)
    assert module.skeleton == COCO_PERSON and module.val_annotations.endswith("person_keypoints_val.json")
    sample = module.datasets["val"][0]
    joints = _ground_truth(dataset, "val")[0]
    labelled = sample["target_weight"] > 0
    assert labelled.tolist() == (joints[:, 2] > 0).tolist()
    error = (_decoded_in_image(sample)[labelled] - torch.from_numpy(joints[:, :2])[labelled]).abs().max()
    assert error < 1.5  # within a heatmap pixel's refinement error, mapped back to the image


def test_a_flipped_crop_swaps_left_and_right_joints(dataset: Path) -> None:
    module = _module(dataset, flip_prob=1.0, rotation_prob=0.0, scale_factor=0.0)
    module.setup("fit")
    sample = module.datasets["train"][0]
    joints = torch.from_numpy(_ground_truth(dataset, "train")[0])
    decoded = _decoded_in_image(sample)
    swap = list(COCO_PERSON.flip_index)
    labelled = sample["target_weight"] > 0
    # the channel of left_wrist now holds the right wrist, at its true image position
    assert (decoded[labelled] - joints[swap][labelled, :2]).abs().max() < 1.5
    assert sample["target_weight"].tolist() == (joints[swap, 2] > 0).float().tolist()


def test_malformed_annotations_are_skipped_counted_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = generate_synthetic_pose(tmp_path, splits=(("val", 4),), image_size=(100, 100), seed=0)
    path = root / "annotations" / "person_keypoints_val.json"
    data = json.loads(path.read_text())
    anns = data["annotations"]
    anns[0]["keypoints"] = anns[0]["keypoints"][:-3]
    anns[1]["bbox"] = [500, 500, 10, 10]
    anns.append({**anns[2], "id": 99, "image_id": 12345})
    (root / "images" / "val" / data["images"][-1]["file_name"]).unlink()
    path.write_text(json.dumps(data))
    expected = [a for a in anns[2:] if a["image_id"] not in (data["images"][-1]["id"], 12345)]
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        instances, _ = read_coco_persons(path, root / "images" / "val", num_joints=17)
    assert len(instances) == len(expected)
    for phrase in (
        f"1 annotations with a keypoint list not of length 51 (ids {anns[0]['id']})",
        f"1 annotations whose box is empty or outside the image (ids {anns[1]['id']})",
        "1 annotations of unknown images (ids 99)",
        f"1 missing image files (ids {data['images'][-1]['id']})",
    ):
        assert phrase in caplog.text
    assert str(path) in caplog.text
    with pytest.raises(ValueError, match="annotates 17 joints .* but the model predicts 14; set num_joints=17"):
        read_coco_persons(path, root / "images" / "val", num_joints=14)
    with pytest.raises(FileNotFoundError, match="image folder"):
        read_coco_persons(path, root / "nowhere", num_joints=17)


def test_evaluation_can_use_detector_boxes(dataset: Path, tmp_path: Path) -> None:
    detections = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 90], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.05},
        {"image_id": 2, "category_id": 1, "bbox": [20, 5, 60, 100], "score": 0.7},
    ]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(detections))
    module = _module(dataset, val_detections=str(path), min_detection_score=0.1)
    module.setup("validate")
    batch = next(iter(module.val_dataloader()))
    assert batch["score"].tolist() == pytest.approx([0.9, 0.7]) and batch["image_id"].tolist() == [1, 2]
    assert batch["target_weight"].sum() == 0


def test_an_unreadable_image_is_reported_and_replaced(dataset: Path, tmp_path: Path, caplog) -> None:
    module = _module(dataset)
    module.setup("validate")
    val = module.datasets["val"]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    val.instances[0] = type(val.instances[0])(str(broken), 1, (0.0, 0.0, 10.0, 10.0), None)
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        sample = val[0]
    assert f"skipping unreadable image {broken}" in caplog.text
    assert sample["index"].item() == 1  # the next instance stands in; the metric counts each index once


def test_missing_files_and_settings_are_clear_errors(dataset: Path) -> None:
    with pytest.raises(ValueError, match="give train_annotations and train_images together"):
        CocoKeypointsDataModule("x.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CocoKeypointsDataModule(val_annotations="nope.json", val_images=str(dataset)).setup("validate")
    with pytest.raises(ValueError, match="no train data"):
        CocoKeypointsDataModule(val_annotations="a.json", val_images=str(dataset)).setup("fit")
