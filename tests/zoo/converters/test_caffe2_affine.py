"""The authors' frozen-BN ("affine") Caffe2 nets: AffineNd layers convert into BNs that compute s * x + b."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import nlzoo
from nlzoo.errors import ConversionError
from nlzoo.zoo import convert_checkpoint, get_entry
from nlzoo.zoo.converters.caffe2 import BN_EPS
from nlzoo.zoo.converters.safe_pickle import load_pickle

from .layouts import randomise, write_caffe2


def _as_affine(path: Path, *, keep: str | None = None) -> Path:
    """Fold every BN of a Caffe2 blob file into AffineNd blobs (``s' = s / sqrt(var + eps)``,
    ``b' = b - mean * s'``), as video-nonlocal-net's modify_caffe2_ftvideo.py does, dropping the statistics
    (except the ``_rm`` / ``_riv`` of ``keep``, to make a file that is neither one thing nor the other)."""
    blobs = load_pickle(path)["blobs"]
    for name in [n[: -len("_rm")] for n in blobs if n.endswith("_rm")]:
        scale = blobs[f"{name}_s"] / np.sqrt(blobs[f"{name}_riv"] + BN_EPS)
        blobs[f"{name}_b"] = (blobs[f"{name}_b"] - blobs[f"{name}_rm"] * scale).astype(np.float32)
        blobs[f"{name}_s"] = scale.astype(np.float32)
        if name != keep:
            del blobs[f"{name}_rm"], blobs[f"{name}_riv"]
    with path.open("wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    return path


@pytest.mark.parametrize(
    ("tag", "groups", "frames"), [("kinetics400_vnl32x4_affine", 4, 8), ("kinetics400_vnl128x1_affine", 16, 32)]
)
def test_an_affine_nonlocal_net_converts_to_the_same_function(
    tmp_path: Path, tag: str, groups: int, frames: int
) -> None:
    """The folded file gives the logits of the net it was folded from (with real BN statistics). Res3 attends
    within groups of 4 frames of the tag's clip (32 -> 16 frames at res3 = 4 groups; 128 -> 16 groups); the test
    clip is shorter (``frames``, one frame per group) to stay small."""
    t = get_entry("i3d_r50_nl").tag(tag)
    source = randomise(nlzoo.load("i3d_r50_nl", pretrained=False, num_classes=400, **t.model_args))
    checkpoint = _as_affine(write_caffe2(source, tmp_path / t.origin_url.rsplit("/", 1)[-1], sgd_state=False))
    assert not any(k.endswith(("_rm", "_riv")) for k in load_pickle(checkpoint)["blobs"])

    messages: list[str] = []
    out = convert_checkpoint("caffe2", "i3d_r50_nl", checkpoint, tmp_path / "out", progress=messages.append)
    assert any("frozen-BN (AffineNd)" in m for m in messages)
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained_tag"] == tag and "AffineNd" in config["provenance"]["conversion"]["derived"]
    converted = nlzoo.load(out).eval()
    blocks = [m for n, m in converted.named_modules() if n.endswith("_nonlocal")]
    assert [b.temporal_groups for b in blocks] == [groups] * 2 + [1] * 3
    assert all(isinstance(b.norm, torch.nn.Identity) for b in blocks)  # NONLOCAL.USE_BN False

    x = torch.randn(1, 3, frames, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(converted(x), source(x), rtol=1e-4, atol=1e-5)


def test_a_file_with_some_bn_statistics_missing_is_refused(tmp_path: Path) -> None:
    """Statistics are derived only for a file that has none: a half-affine file is not silently completed."""
    t = get_entry("i3d_r50").tag("kinetics400_vnl32x4_affine")
    source = randomise(nlzoo.load("i3d_r50", pretrained=False, num_classes=400, **t.model_args))
    checkpoint = _as_affine(write_caffe2(source, tmp_path / "partial.pkl"), keep="res_conv1_bn")
    with pytest.raises(ConversionError, match=r"missing: .*running_mean"):
        convert_checkpoint("caffe2", "i3d_r50.kinetics400_vnl32x4_affine", checkpoint, tmp_path / "out")
