from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from nlzoo.data import SyntheticPoseDataModule, generate_synthetic_pose
from nlzoo.models.skeleton import COCO_KEYPOINT_NAMES


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_dataset_depends_only_on_the_seed(tmp_path: Path) -> None:
    splits = (("train", 3), ("val", 2))
    a = _files(generate_synthetic_pose(tmp_path / "a", splits=splits, seed=1))
    b = _files(generate_synthetic_pose(tmp_path / "b", splits=splits, seed=1))
    c = _files(generate_synthetic_pose(tmp_path / "c", splits=splits, seed=2))
    assert a == b and len(a) == 3 + 2 + 2
    assert a.keys() == c.keys() and a != c


def test_it_is_coco_keypoints_format_that_pycocotools_reads(tmp_path: Path) -> None:
    root = generate_synthetic_pose(tmp_path, splits=(("val", 12),), image_size=(120, 100), seed=0)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(root / "annotations" / "person_keypoints_val.json"))
    assert coco.loadCats(1)[0]["keypoints"] == list(COCO_KEYPOINT_NAMES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(coco.getImgIds()) == 12 and len(anns) >= 12
    flags = set()
    for ann in anns:
        joints = np.array(ann["keypoints"]).reshape(17, 3)
        flags |= set(joints[:, 2].tolist())
        assert ann["num_keypoints"] == (joints[:, 2] > 0).sum()
        assert (joints[joints[:, 2] == 0, :2] == 0).all()  # COCO: unlabelled joints are (0, 0, 0)
        x, y, w, h = ann["bbox"]
        inside = joints[joints[:, 2] > 0, :2]
        assert (inside >= [x - 1e-6, y - 1e-6]).all() and (inside <= [x + w + 1e-6, y + h + 1e-6]).all()
    assert {1, 2} <= flags  # occluded and visible joints occur
    assert (root / "images" / "val" / coco.loadImgs(1)[0]["file_name"]).is_file()


def test_the_data_module_regenerates_only_when_its_settings_change(tmp_path: Path) -> None:
    module = SyntheticPoseDataModule(str(tmp_path), num_train_images=2, num_val_images=1, num_workers=0)
    module.prepare_data()
    ann = tmp_path / "annotations" / "person_keypoints_train.json"
    stamp = ann.stat().st_mtime_ns
    module.prepare_data()
    assert ann.stat().st_mtime_ns == stamp
    SyntheticPoseDataModule(str(tmp_path), num_train_images=3, num_val_images=1).prepare_data()
    assert len(json.loads(ann.read_text())["images"]) == 3
