from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nlzoo.data import VideoDataModule

from .video_files import write_numbered_video

SMALL = {"num_frames": 4, "sampling_rate": 2, "crop_size": [32, 32], "train_scale": [32, 40], "test_scale": 32}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/<class>/*.mp4 and val/<class>/*.mp4 for classes 'jump' and 'run'."""
    root = tmp_path_factory.mktemp("tree")
    video = write_numbered_video(root / "v.mp4", 20)
    for split, n in (("train", 3), ("val", 1)):
        for label in ("run", "jump"):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                shutil.copy(video, root / split / label / f"{i}.mp4")
    return root


def test_class_folders(tree: Path) -> None:
    data = VideoDataModule(
        str(tree / "train"), val=str(tree / "val"), model="i3d_r18", data_config=SMALL, batch_size=2, num_workers=0
    )
    assert data.num_classes == 2 and data.label_names == ["jump", "run"]
    data.setup("fit")
    assert len(data.datasets["train"]) == 6 and len(data.datasets["val"]) == 2
    batch = next(iter(data.train_dataloader()))
    assert batch["video"].shape == (2, 3, 4, 32, 32)
    assert batch["label"].tolist() != [] and set(batch["label"].tolist()) <= {0, 1}


def test_list_files_with_label_names_and_multi_view_test(tree: Path) -> None:
    (tree / "names.txt").write_text("jump\nrun\nswim\n")
    (tree / "test.txt").write_text("val/jump/0.mp4 0\nval/run/0.mp4 2\n")
    data = VideoDataModule(
        test=str(tree / "test.txt"),
        label_names=str(tree / "names.txt"),
        model="i3d_r18",
        data_config=SMALL,
        test_views=(2, 3),
        eval_batch_size=2,
        num_workers=0,
    )
    assert data.num_classes == 3
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    assert batch["video"].shape == (12, 3, 4, 32, 32)
    assert batch["index"].tolist() == [0] * 6 + [1] * 6 and batch["label"].tolist() == [0] * 6 + [2] * 6


def test_label_out_of_range_for_the_named_classes(tree: Path) -> None:
    (tree / "bad.txt").write_text("val/jump/0.mp4 0\nval/run/0.mp4 2\n")
    data = VideoDataModule(str(tree / "bad.txt"), label_names=["jump", "run"], model="c2d_r18", num_workers=0)
    with pytest.raises(ValueError, match=r"bad\.txt:2: label 2 is out of range for 2 classes"):
        data.setup("fit")


def test_num_classes_inferred_or_checked(tree: Path) -> None:
    (tree / "train.txt").write_text("train/jump/0.mp4 4\n")
    assert VideoDataModule(str(tree / "train.txt")).num_classes == 5
    with pytest.raises(ValueError, match="num_classes=3 but 2 label names"):
        _ = VideoDataModule(str(tree / "train"), num_classes=3).num_classes
    with pytest.raises(ValueError, match="number of classes is unknown"):
        _ = VideoDataModule(test=str(tree / "train.txt")).num_classes


def test_wrong_root_fails_early(tree: Path) -> None:
    data = VideoDataModule(str(tree / "train.txt"), root="/nonexistent", model="c2d_r18", num_workers=0)
    with pytest.raises(FileNotFoundError, match="check the list file's paths and data.root"):
        data.setup("fit")


def test_data_config_overrides(tree: Path) -> None:
    data = VideoDataModule(
        str(tree / "train"), model="i3d_r18", data_config={"num_frames": 16, "crop_size": [112, 112]}
    )
    resolved = data.resolve_data_config()
    assert (resolved.num_frames, resolved.crop_size, resolved.sampling_rate) == (16, (112, 112), 8)
    with pytest.raises(ValueError, match=r"unknown data_config keys \['frames'\]"):
        VideoDataModule(str(tree / "train"), model="i3d_r18", data_config={"frames": 16}).resolve_data_config()
    with pytest.raises(ValueError, match="no data config"):
        VideoDataModule(str(tree / "train")).resolve_data_config()
