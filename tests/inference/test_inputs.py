"""``load_for_inference``: what the inference commands run is the saved model, only laid out faster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nlzoo.inference.inputs import load_for_inference, read_image
from nlzoo.zoo import DataConfig
from tests.cli.tiny import write_model


def test_video_models_run_channels_last_with_the_same_outputs(tmp_path: Path) -> None:
    reference = write_model(tmp_path / "model")
    model = load_for_inference(str(tmp_path / "model"))
    assert not model.training
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last_3d) for c in convs)
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(model(clip), reference(clip), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("crop_pct", "interpolation"), [(0.95, "bicubic"), (None, "bilinear"), (1.0, "bicubic")])
def test_an_image_is_prepared_exactly_as_timms_evaluation_prepares_it(
    tmp_path: Path, crop_pct: float | None, interpolation: str
) -> None:
    """The inference commands, the page and validation share one transform: timm's, with the model's
    interpolation and crop_pct (timm's 0.875 when unset), on a non-square image in an odd mode."""
    from timm.data.transforms_factory import transforms_imagenet_eval

    config = DataConfig(crop_size=(64, 64), crop_pct=crop_pct, interpolation=interpolation, mean=(0.5, 0.4, 0.3))
    pixels = np.random.default_rng(1).integers(0, 255, (75, 131, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert("P").save(tmp_path / "photo.png")  # a palette image: converted to RGB
    timm_eval = transforms_imagenet_eval(
        img_size=64, crop_pct=crop_pct or 0.875, interpolation=interpolation, mean=config.mean, std=config.std
    )
    expected = timm_eval(Image.open(tmp_path / "photo.png").convert("RGB")).unsqueeze(0)
    assert torch.equal(read_image(tmp_path / "photo.png", config), expected)


def test_a_bare_name_that_is_a_folder_here_gets_the_hint_to_load_the_folder(tmp_path, monkeypatch) -> None:
    """`--model mymodel` after save_pretrained(model, "mymodel"): bare names are registry names."""
    import pytest

    from nlzoo.errors import UnknownNameError
    from nlzoo.inference.inputs import load_for_inference

    (tmp_path / "mymodel").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownNameError, match=r"A folder 'mymodel' exists here.*'\./mymodel'"):
        load_for_inference("mymodel")
