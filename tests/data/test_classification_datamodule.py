from __future__ import annotations

from pathlib import Path

import pytest

from nlzoo.data import default_num_workers, model_data_config
from nlzoo.zoo import get_entry, load, save_pretrained


def test_data_config_of_names_tags_and_folders(tmp_path: Path) -> None:
    entry = get_entry("i3d_r50_nl")
    assert model_data_config("i3d_r50_nl") == entry.data_config
    assert model_data_config("i3d_r50_nl.imagenet") == entry.data_config
    folder = save_pretrained(load("c2d_r18", pretrained=False, num_classes=3), tmp_path / "saved")
    assert model_data_config(str(folder)) == get_entry("c2d_r18").data_config
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        model_data_config(str(tmp_path))


def test_default_workers_leave_a_core_for_the_main_process() -> None:
    assert 0 <= default_num_workers() <= 8
    assert default_num_workers(devices=10_000) == 0


def test_hub_models_leave_the_data_config_to_the_task() -> None:
    with pytest.raises(ValueError, match="leave data.model unset"):
        model_data_config("hf-hub:someone/i3d")
