"""Folder writes are atomic: concurrent writers and readers of one folder never see half of it, and a failed
write leaves the previous folder as it was."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch
from torch import nn

import nlzoo
from nlzoo.zoo.config import DataConfig, ModelConfig
from nlzoo.zoo.folder import read_folder, save_pretrained

WRITES = 12


def _tiny(num_classes: int) -> nn.Module:
    """A small model carrying a config (read_folder needs no registry): the head size identifies the writer."""
    model = nn.Sequential(nn.Linear(64, 256), nn.Linear(256, num_classes))
    model.nlzoo_config = ModelConfig(
        architecture="tiny",
        task="image-classification",
        num_classes=num_classes,
        data_config=DataConfig(),
        label_names=[f"c{i}" for i in range(num_classes)],
    )
    return model


def _writer(folder: str, num_classes: int) -> None:
    model = _tiny(num_classes)
    for _ in range(WRITES):
        save_pretrained(model, folder, model_card=False)


def test_concurrent_writers_and_a_reader_never_see_half_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    save_pretrained(_tiny(2), folder)
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(str(folder), n)) for n in (3, 5)]
    for w in writers:
        w.start()
    reads, seen = 0, set()
    while any(w.is_alive() for w in writers) or reads < 20:
        cfg, tensors = read_folder(folder)  # raises on a digest mismatch, a missing or empty file
        assert tensors["1.weight"].shape[0] == cfg.num_classes == len(cfg.label_names)  # one version's pair
        seen.add(cfg.num_classes)
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert seen & {3, 5}, seen  # the reader did overlap the writers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left behind


def test_a_failed_write_leaves_the_previous_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = save_pretrained(_tiny(2), tmp_path / "model")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_pretrained(_tiny(3), folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_replacing_a_folder_with_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        save_pretrained(_tiny(2), tmp_path / "file")


def test_a_reloaded_registry_model_is_written_atomically_too(tmp_path: Path) -> None:
    model = nlzoo.load("c2d_r18", pretrained=False, num_classes=2)
    nlzoo.save_pretrained(model, tmp_path / "m")
    nlzoo.save_pretrained(model, tmp_path / "m")  # replaces in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    torch.testing.assert_close(nlzoo.load(tmp_path / "m").fc.weight, model.fc.weight, rtol=0, atol=0)
