"""Published checkpoints downloaded from their origin and converted on first load, served here by a real
HTTP server on loopback (the origins themselves are not reachable from CI)."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import nlzoo
from nlzoo.zoo import get_entry
from nlzoo.zoo.converters import ConversionError
from nlzoo.zoo.converters.published import OriginUnavailableError

from .layouts import randomise, write_pytorchvideo

ARCH, TAG = "c2d_r50", "kinetics400"  # pytorchvideo's C2D_8x8_R50.pyth


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A directory holding the checkpoint under its published file name, and the network it came from."""
    root = tmp_path_factory.mktemp("origin")
    source = randomise(nlzoo.load(ARCH, pretrained=False, num_classes=400))
    write_pytorchvideo(source, root / "C2D_8x8_R50.pyth")
    return root, source


@pytest.fixture
def origin(published: tuple[Path, torch.nn.Module]) -> Iterator[str]:
    """Base URL of a loopback HTTP server over the published directory."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(published[0]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _point_tag_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    entry = get_entry(ARCH)
    monkeypatch.setitem(entry.tags, TAG, dataclasses.replace(entry.tags[TAG], origin_url=url))


def test_first_load_downloads_and_converts_then_the_cache_serves_offline(
    published: tuple[Path, torch.nn.Module], origin: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _point_tag_at(monkeypatch, f"{origin}/C2D_8x8_R50.pyth")
    model = nlzoo.load(f"{ARCH}.{TAG}", cache_dir=str(tmp_path))
    expected = published[1].state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
    folder = tmp_path / f"{ARCH}.{TAG}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # the download and work dirs are gone
    assert {"config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    assert model.nlzoo_config.provenance["source"].startswith(f"{origin}/C2D_8x8_R50.pyth (pytorchvideo)")
    assert model.nlzoo_config.label_names[0] == "abseiling"

    _point_tag_at(monkeypatch, "http://127.0.0.1:9/gone.pyth")  # nothing listens: only the cache can answer
    again = nlzoo.load(f"{ARCH}.{TAG}", cache_dir=str(tmp_path), local_files_only=True, num_classes=5)
    torch.testing.assert_close(again.layer4[2].conv3.weight, model.layer4[2].conv3.weight, rtol=0, atol=0)
    assert again.fc.out_features == 5


def test_an_unreachable_origin_says_how_to_convert_by_hand(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _point_tag_at(monkeypatch, "http://127.0.0.1:9/C2D_8x8_R50.pyth")
    with pytest.raises(
        OriginUnavailableError,
        match=r"pretrained=False.*cannot be downloaded now .*nlzoo convert --model c2d_r50.kinetics400",
    ):
        nlzoo.load(f"{ARCH}.{TAG}", cache_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OriginUnavailableError, match="downloads are off"):
        nlzoo.load(f"{ARCH}.{TAG}", cache_dir=str(tmp_path), local_files_only=True)


def test_a_file_that_is_not_the_published_checkpoint_is_refused_and_not_cached(
    published: tuple[Path, torch.nn.Module], origin: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = published[0] / "wrong.pyth"
    write_pytorchvideo(
        randomise(nlzoo.load("i3d_r50", pretrained=False, num_classes=400)), wrong
    )  # I3D kernels, not C2D
    _point_tag_at(monkeypatch, f"{origin}/wrong.pyth")
    with pytest.raises(ConversionError):
        nlzoo.load(f"{ARCH}.{TAG}", cache_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_download_whose_name_hash_does_not_match_is_refused_and_not_cached(
    published: tuple[Path, torch.nn.Module], origin: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nlzoo.errors import ChecksumMismatchError
    from nlzoo.zoo.download import sha256_prefix_in_name

    (published[0] / "C2D_8x8_R50-deadbeef.pyth").write_bytes((published[0] / "C2D_8x8_R50.pyth").read_bytes())
    _point_tag_at(monkeypatch, f"{origin}/C2D_8x8_R50-deadbeef.pyth")  # the name promises a sha256 it lacks
    assert sha256_prefix_in_name(f"{origin}/C2D_8x8_R50-deadbeef.pyth") == "deadbeef"
    with pytest.raises(ChecksumMismatchError, match="its published name says it starts with deadbeef"):
        nlzoo.load(f"{ARCH}.{TAG}", cache_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # neither the download nor a conversion was kept
