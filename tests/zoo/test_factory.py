from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

import nlzoo
from nlzoo.zoo import CheckpointMismatchError, load_folder
from nlzoo.zoo import hub as hub_module
from nlzoo.zoo.folder import file_sha256


@pytest.fixture
def saved(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=6)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model, nlzoo.save_pretrained(model, tmp_path / "model")


def rewrite_weights(folder: Path, weights: dict[str, torch.Tensor] | None, raw: bytes | None = None) -> None:
    """Replace a folder's weights *and* the digest its config records (a deliberate edit, not tampering)."""
    if weights is not None:
        safetensors.torch.save_file(weights, folder / "model.safetensors")
    else:
        (folder / "model.safetensors").write_bytes(raw or b"")
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = file_sha256(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))


def test_folder_round_trip(saved: tuple[torch.nn.Module, Path]) -> None:
    model, folder = saved
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "c2d_r18_nl" and config["num_classes"] == 6
    assert config["data_config"]["num_frames"] == 8
    again = nlzoo.load(folder)
    x = torch.randn(1, 3, 2, 32, 32)
    torch.testing.assert_close(again.eval()(x), model.eval()(x), rtol=0, atol=0)
    assert nlzoo.load(f"local-dir:{folder}").nlzoo_config.architecture == "c2d_r18_nl"


def test_new_num_classes_reinitialises_only_the_head(
    saved: tuple[torch.nn.Module, Path], caplog: pytest.LogCaptureFixture
) -> None:
    model, folder = saved
    with caplog.at_level(logging.WARNING, logger="nlzoo"):
        fresh = load_folder(folder, num_classes=3)
    assert "dropped fc.bias, fc.weight" in caplog.text
    assert fresh.fc.out_features == 3 and fresh.nlzoo_config.label_names is None
    torch.testing.assert_close(fresh.layer2[2].conv_theta.weight, model.layer2[2].conv_theta.weight)


def test_any_other_mismatch_is_an_error_listing_keys(saved: tuple[torch.nn.Module, Path]) -> None:
    _, folder = saved
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    del weights["layer2.1_nonlocal.conv_g.weight"]
    weights["extra.weight"] = torch.zeros(1)
    rewrite_weights(folder, weights)
    with pytest.raises(CheckpointMismatchError, match=r"1 missing: layer2\.1_nonlocal\.conv_g\.weight") as err:
        nlzoo.load(folder)
    assert "1 unexpected: extra.weight" in str(err.value)
    with pytest.raises(CheckpointMismatchError, match="mis-shaped"):
        nlzoo.load(folder, nonlocal_args={"inner_channels": 8})


def test_missing_and_corrupt_files(saved: tuple[torch.nn.Module, Path]) -> None:
    _, folder = saved
    rewrite_weights(folder, None, b"not safetensors")
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        nlzoo.load(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        nlzoo.load(folder)


def test_name_errors() -> None:
    with pytest.raises(FileNotFoundError, match="'some/where' does not exist .*For a Hub repo use 'hf-hub:some/where'"):
        nlzoo.load("some/where")
    with pytest.raises(TypeError, match=r"i3d_r18_nl\(\) got an unexpected argument 'num_clases'\. Did you mean"):
        nlzoo.load("i3d_r18_nl", pretrained=False, num_clases=3)
    with pytest.raises(ValueError, match="names tag 'imagenet' but pretrained='kinetics400'"):
        nlzoo.load("i3d_r18.imagenet", pretrained="kinetics400")


def test_imagenet_tag_inflates_timm_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 'imagenet' tag: timm's 2D safetensors from the Hub cache, inflated; NL blocks stay identities."""
    net2d = timm.create_model("resnet18").eval()
    safetensors.torch.save_file(net2d.state_dict(), tmp_path / "model.safetensors")
    asked = {}

    def fake_hub_file(repo_id: str, filename: str, **kwargs: object) -> Path:
        asked.update(repo_id=repo_id, filename=filename, **kwargs)
        return tmp_path / filename

    monkeypatch.setattr(hub_module, "hub_file", fake_hub_file)
    model = nlzoo.load("c2d_r18_nl", pretrained="imagenet", local_files_only=True).eval()
    assert asked["repo_id"] == "timm/resnet18.tv_in1k" and asked["local_files_only"] is True
    assert model.nlzoo_config.pretrained_tag == "imagenet" and model.num_classes == 1000
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x.unsqueeze(2)), net2d(x), rtol=1e-4, atol=1e-4)
    kinetics_head = nlzoo.load("c2d_r18_nl.imagenet", num_classes=400, local_files_only=True)
    assert kinetics_head.num_classes == 400
