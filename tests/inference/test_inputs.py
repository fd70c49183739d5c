"""``load_for_inference``: what the inference commands run is the saved model, only laid out faster."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nlzoo.inference.inputs import load_for_inference
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
