"""ImageFolderDataModule: classes from folders, timm transforms from the data config, unreadable images skipped."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nlzoo.data import (
    IMAGE_EXTENSIONS,
    ImageFileDataset,
    ImageFolderDataModule,
    SkippedImageWarning,
    collate_images,
    scan_class_folders,
)
from nlzoo.data.image_transforms import eval_image_transform, train_image_transform
from nlzoo.zoo import DataConfig

SMALL = {"crop_size": [32, 32], "crop_pct": 1.0}


def write_png(path: Path, rgb: tuple[int, int, int] | None = None, size: tuple[int, int] = (40, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    pixels = np.full((*size, 3), rgb, np.uint8) if rgb else rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """train: cat (3 images), dog (3 images + 1 corrupt + 1 truncated); val: dog only (1 image + 1 corrupt)."""
    for cls in ("cat", "dog"):
        for i in range(3):
            write_png(tmp_path / "train" / cls / f"{i}.png")
    (tmp_path / "train" / "dog" / "corrupt.png").write_bytes(b"this is not an image")
    write_png(tmp_path / "train" / "dog" / "whole.png")
    whole = (tmp_path / "train" / "dog" / "whole.png").read_bytes()
    (tmp_path / "train" / "dog" / "whole.png").unlink()
    (tmp_path / "train" / "dog" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "train" / "notes.txt").write_text("not a class folder, not an image")
    write_png(tmp_path / "val" / "dog" / "0.png")
    (tmp_path / "val" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8\xff broken jpeg")
    return tmp_path


def module(tree: Path, **kwargs: object) -> ImageFolderDataModule:
    defaults: dict[str, object] = {"model": "resnet18", "data_config": SMALL, "num_workers": 0, "seed": 0}
    return ImageFolderDataModule(str(tree / "train"), val=str(tree / "val"), **{**defaults, **kwargs})


def test_classes_come_from_the_training_folders(tree: Path) -> None:
    dm = module(tree)
    assert dm.label_names == ["cat", "dog"] and dm.num_classes == 2
    dm.setup("fit")
    assert {item.label for item in dm.datasets["val"].items} == {1}  # val holds only "dog": train's index
    names = tree / "classes.txt"
    names.write_text("dog\ncat\nbird\n")
    assert module(tree, label_names=str(names)).num_classes == 3
    with pytest.raises(ValueError, match=r"folders \['cat'\] are not among the 1 known classes"):
        module(tree, label_names=["dog"]).setup("fit")


def test_unreadable_images_are_skipped_counted_and_named(tree: Path) -> None:
    dm = module(tree, batch_size=4)
    dm.setup("fit")
    with pytest.warns(SkippedImageWarning) as caught:
        train_batches = list(dm.train_dataloader())
        val_batches = list(dm.val_dataloader())
    named = " ".join(str(w.message) for w in caught)
    assert "corrupt.png" in named and "truncated.png" in named and "bad.jpg" in named
    assert [len(b["image"]) for b in train_batches] == [4, 4]  # replaced: full batches, last incomplete dropped
    assert sum(int(b["skipped"]) for b in train_batches) >= 2  # each unreadable file once at least
    assert all(b["image"].shape[1:] == (3, 32, 32) for b in train_batches)
    (val,) = val_batches
    assert len(val["image"]) == 1 and int(val["skipped"]) == 1 and val["label"].tolist() == [1]


def test_a_batch_of_only_unreadable_images_is_empty(tree: Path) -> None:
    items = [it for it in scan_class_folders(tree / "val", extensions=IMAGE_EXTENSIONS)[0] if it.path.endswith(".jpg")]
    dataset = ImageFileDataset(items, transform=eval_image_transform(DataConfig(crop_size=(8, 8))), train=False)
    with pytest.warns(SkippedImageWarning, match="bad.jpg"):
        batch = collate_images([dataset[0]])
    assert batch["image"].numel() == 0 and batch["label"].numel() == 0 and int(batch["skipped"]) == 1


def test_eval_transform_follows_the_data_config(tmp_path: Path) -> None:
    write_png(tmp_path / "flat.png", rgb=(200, 100, 50), size=(50, 70))
    config = DataConfig(crop_size=(24, 32), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), crop_pct=0.9)
    out = eval_image_transform(config)(Image.open(tmp_path / "flat.png").convert("RGB"))
    assert out.shape == (3, 24, 32)
    expected = (torch.tensor([200, 100, 50]) / 255 - torch.tensor(config.mean)) / torch.tensor(config.std)
    torch.testing.assert_close(out, expected.view(3, 1, 1).expand_as(out), atol=1e-5, rtol=0)


def test_training_augmentation_depends_only_on_the_seed(tree: Path) -> None:
    dm = module(tree)
    dm.setup("fit")
    dataset = dm.datasets["train"]
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = dataset[(0, 7)]["image"]
    assert torch.equal(torch.rand(3), before)  # the caller's random stream is untouched
    torch.manual_seed(999)
    assert torch.equal(dataset[(0, 7)]["image"], first)
    assert not torch.equal(dataset[(0, 8)]["image"], first)


def test_data_config_sources_and_errors(tree: Path) -> None:
    assert module(tree, data_config=None).resolve_data_config().crop_size == (224, 224)
    assert module(tree, model="resnet18.tv_in1k", data_config=None).resolve_data_config().interpolation == "bilinear"
    assert module(tree).resolve_data_config().crop_size == (32, 32)
    assert module(tree, model="timm:regnetx_002", data_config=None).resolve_data_config().interpolation == "bicubic"
    with pytest.raises(ValueError, match=r"unknown data_config keys \['crop'\]"):
        module(tree, data_config={"crop": 3}).resolve_data_config()
    with pytest.raises(ValueError, match="no data config"):
        module(tree, model=None).setup("fit")
    with pytest.raises(ValueError, match="scale must be"):
        train_image_transform(DataConfig(), scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="no predict split"):
        module(tree).setup("predict")


def test_no_warnings_for_readable_data(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        write_png(tmp_path / "train" / cls / "0.png")
    dm = ImageFolderDataModule(str(tmp_path / "train"), model="resnet18", data_config=SMALL, num_workers=0)
    dm.setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedImageWarning)
        (batch,) = list(dm.train_dataloader())
    assert int(batch["skipped"]) == 0 and sorted(batch["label"].tolist()) == [0, 1]


def test_a_narrow_strip_is_refused_before_its_resize_and_the_advice_works(tmp_path: Path, monkeypatch) -> None:
    """A 400 x 20 strip resized to cover an 80 px target is 1,600 x 80; at a limit of 100,000 pixels it is
    refused before any allocation (a 20000 x 2 strip, a 1 KB file, grew to 1.6 GB at 224 px)."""
    from nlzoo.data.video_sources import VideoItem
    from nlzoo.errors import LimitError

    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "100000")
    write_png(tmp_path / "strip.png", rgb=(10, 200, 30), size=(20, 400))
    transform = eval_image_transform(DataConfig(crop_size=(72, 72), crop_pct=0.9))  # resize target 80
    strip = Image.open(tmp_path / "strip.png").convert("RGB")
    with pytest.raises(LimitError, match=r"a 400x20 picture resized to 1600x80 \(crop a strip this narrow first\)"):
        transform(strip)
    assert transform(strip.crop((0, 0, 40, 20))).shape == (3, 72, 72)  # cropped first, as advised
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "200000")  # or the limit raised
    assert transform(strip).shape == (3, 72, 72)

    # In an evaluation dataset the strip is skipped and counted, naming its path.
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "100000")
    dataset = ImageFileDataset([VideoItem(str(tmp_path / "strip.png"), (0,))], transform=transform, train=False)
    with pytest.warns(SkippedImageWarning, match=r"strip\.png: a 400x20 picture resized"):
        assert dataset[0]["skipped"] == 1 and dataset[0]["image"] is None
