"""``nlzoo.zoo.release``: a real download from a loopback origin, the real converter and checks, the real
folder and card writers, and huggingface_hub's HfApi faked at its boundary (signatures bound to the real ones)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import safetensors.torch
import torch
from huggingface_hub import ModelCard

import nlzoo
from nlzoo.errors import UnknownNameError
from nlzoo.zoo import get_entry, registry, release
from nlzoo.zoo.checkpoints import render_checkpoints
from nlzoo.zoo.families.sources import HubWeights
from nlzoo.zoo.records import RECORD_PATH, load_records

from .converters.layouts import randomise, write_caffe2
from .releasing import ARCH, CHECKPOINT, ORG, FakeHfApi, add_tiny_tags, install_fake_hub, serve_directory, tiny_tag

NAME = f"{ARCH}.tiny_k5"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """The publisher's directory holding a tiny Caffe2 checkpoint, and the network it was written from."""
    root = tmp_path_factory.mktemp("origin")
    source = randomise(nlzoo.load(ARCH, pretrained=False, num_classes=5))
    write_caffe2(source, root / CHECKPOINT, sgd_state=False)
    return root, source


@pytest.fixture
def origin(published: tuple[Path, torch.nn.Module]) -> Iterator[str]:
    with serve_directory(published[0]) as url:
        yield url


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Copies of published.json and checkpoints.md for the release to update (never the committed ones)."""
    record = tmp_path / "published.json"
    shutil.copyfile(RECORD_PATH, record)
    checkpoints = tmp_path / "checkpoints.md"
    checkpoints.write_text("stale\n")
    return {"record_path": record, "checkpoints_path": checkpoints, "out_dir": tmp_path / "out"}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> type[FakeHfApi]:
    monkeypatch.setenv("HF_TOKEN", "hf_release")
    return install_fake_hub(monkeypatch)


def test_release_pushes_the_verified_folder_and_records_it(
    published: tuple[Path, torch.nn.Module],
    origin: str,
    files: dict[str, Path],
    hub: type[FakeHfApi],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"{origin}/{CHECKPOINT}"
    add_tiny_tags(monkeypatch, tiny_tag("tiny_k5", url))
    (outcome,) = release.release(ORG, patterns=[NAME], private=True, **files)
    repo_id = f"{ORG}/{NAME}"
    assert outcome.status == "published", outcome.line
    # Who the token belongs to is asked first (before any download); then push_to_hub's calls.
    assert [name for name, _ in hub.calls] == ["HfApi", "whoami", "HfApi", "create_repo", "upload_folder"]
    assert hub.calls[0][1]["token"] == hub.calls[2][1]["token"] == "hf_release"
    assert (hub.calls[3][1]["repo_id"], hub.calls[3][1]["private"]) == (repo_id, True)
    (uploaded,) = hub.uploads
    folder = files["out_dir"] / NAME
    assert uploaded == {p.name: p.read_bytes() for p in folder.iterdir()}  # exactly the folder left in --out
    assert set(uploaded) == {"config.json", "model.safetensors", "README.md"}

    # The weights are the publisher's network, key for key and bit for bit.
    weights = safetensors.torch.load(uploaded["model.safetensors"])
    torch.testing.assert_close(weights, published[1].state_dict(), rtol=0, atol=0)

    # The record: the commit the push made, the uploaded weights' and the source file's sha256.
    record = load_records(files["record_path"])[NAME]
    source_sha256 = hashlib.sha256((published[0] / CHECKPOINT).read_bytes()).hexdigest()
    assert record.repo_id == repo_id
    assert record.revision in outcome.line and len(record.revision) == 40
    assert record.sha256 == hashlib.sha256(uploaded["model.safetensors"]).hexdigest()
    assert (record.source_url, record.source_sha256) == (url, source_sha256)

    # The registry's tag now loads the release, and checkpoints.md says "published" with repo @ commit.
    tag = get_entry(ARCH).tags["tiny_k5"]
    assert tag.status == "available" and tag.source == HubWeights(repo_id, record.revision, record.sha256)
    assert tag.origin_sha256 == source_sha256
    md = files["checkpoints_path"].read_text()
    assert md == render_checkpoints()
    (row,) = [line for line in md.splitlines() if line.startswith(f"| `{ARCH}` | `tiny_k5` |")]
    assert row.endswith(f"| `{repo_id}` @ `{record.revision}` | `{record.sha256}` | published |")

    # The card: model-index results from the tag's reported accuracy; the source URL and both digests.
    card = ModelCard(uploaded["README.md"].decode())
    results = {(r.dataset_name, r.metric_name, r.metric_value, r.source_url) for r in card.data.eval_results}
    assert results == {("Kinetics-400", "top-1 accuracy", 61.5, url), ("Kinetics-400", "top-5 accuracy", 88.25, url)}
    assert card.data.license == "cc-by-nc-4.0"
    assert f"checkpoint {url}, sha256 `{source_sha256}`" in card.text
    assert f"`model.safetensors` sha256: `{record.sha256}`" in card.text
    assert f'nlzoo.load("hf-hub:{repo_id}")' in card.text
    assert "a 1x3x4x64x64 clip gives 5 finite logits" in card.text  # what the release checked

    # Releasing again finds the same weights already published: nothing is pushed.
    hub.calls.clear()
    (again,) = release.release(ORG, patterns=[NAME], **files)
    assert again.status == "unchanged" and [name for name, _ in hub.calls] == ["HfApi", "whoami"]


def test_a_tampered_download_is_refused_and_the_other_tags_still_go(
    published: tuple[Path, torch.nn.Module],
    origin: str,
    files: dict[str, Path],
    hub: type[FakeHfApi],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    good = published[0] / CHECKPOINT
    tampered_dir = published[0] / "mirror"
    tampered_dir.mkdir(exist_ok=True)
    data = bytearray(good.read_bytes())
    data[-100] ^= 1  # one bit inside a weight
    (tampered_dir / CHECKPOINT).write_bytes(bytes(data))
    expected = hashlib.sha256(good.read_bytes()).hexdigest()
    add_tiny_tags(
        monkeypatch,
        tiny_tag("tiny_k5", f"{origin}/mirror/{CHECKPOINT}", origin_sha256=expected),
        tiny_tag("tiny_ok", f"{origin}/{CHECKPOINT}", origin_sha256=expected),
    )
    records_before = files["record_path"].read_text()
    bad, ok = release.release(ORG, patterns=[f"{ARCH}.tiny_*"], **files)
    assert bad.status == "failed" and f"{NAME}: FAILED: " in bad.line and f"but {expected} was published" in bad.line
    assert ok.status == "published"
    assert len(hub.uploads) == 1  # only the good tag reached the Hub
    assert [c["repo_id"] for name, c in hub.calls if name == "upload_folder"] == [f"{ORG}/{ARCH}.tiny_ok"]
    assert not (files["out_dir"] / NAME).exists()  # no folder for the refused file
    assert list(load_records(files["record_path"])) == [f"{ARCH}.tiny_ok"] and records_before != ""
    assert get_entry(ARCH).tags["tiny_k5"].status == "convertible"
    assert [p.name for p in files["out_dir"].iterdir()] == [f"{ARCH}.tiny_ok"]  # the download is not kept


@pytest.mark.parametrize("shift", [0.0, 1e-2])
def test_a_reference_network_decides_logit_parity(
    published: tuple[Path, torch.nn.Module],
    origin: str,
    files: dict[str, Path],
    hub: type[FakeHfApi],
    monkeypatch: pytest.MonkeyPatch,
    shift: float,
) -> None:
    def reference(arch: str, checkpoint: Path, clip: torch.Tensor) -> torch.Tensor:
        assert (arch, checkpoint.name) == (ARCH, CHECKPOINT)  # the downloaded file, before it is deleted
        with torch.no_grad():
            return published[1](clip) + shift  # the network the file was written from (+ a wrong conversion)

    monkeypatch.setitem(release.REFERENCES, "caffe2", reference)
    add_tiny_tags(monkeypatch, tiny_tag("tiny_k5", f"{origin}/{CHECKPOINT}"))
    (outcome,) = release.release(ORG, patterns=[NAME], dry_run=True, **files)
    if shift:
        assert outcome.status == "failed"
        assert "caffe2's own network on the downloaded file gives other logits" in outcome.line
        assert not (files["out_dir"] / NAME).exists()
    else:
        assert outcome.status == "dry-run"
        assert "logits match caffe2's own network on the downloaded file" in outcome.line
    assert hub.calls == []


def test_dry_run_writes_and_verifies_but_pushes_and_records_nothing(
    origin: str, files: dict[str, Path], hub: type[FakeHfApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_tiny_tags(monkeypatch, tiny_tag("tiny_k5", f"{origin}/{CHECKPOINT}"))
    monkeypatch.delenv("HF_TOKEN")  # a dry run needs no token
    (outcome,) = release.release(ORG, patterns=[NAME], dry_run=True, **files)
    assert outcome.status == "dry-run"
    assert f"would push {files['out_dir'] / NAME} to {ORG}/{NAME} (public)" in outcome.line
    assert {p.name for p in (files["out_dir"] / NAME).iterdir()} == {"config.json", "model.safetensors", "README.md"}
    nlzoo.load(files["out_dir"] / NAME)  # a loadable folder
    assert hub.calls == [] and files["checkpoints_path"].read_text() == "stale\n"
    assert load_records(files["record_path"]) == {}


def test_unknown_patterns_name_close_matches() -> None:
    close = r"no convertible tag matches 'i3d_r50_nl\.kinetcs400'.*Did you mean 'i3d_r50_nl\.kinetics400'"
    with pytest.raises(UnknownNameError, match=close):
        release.release_candidates(["i3d_r50_nl.kinetcs400"])
    with pytest.raises(UnknownNameError, match=r"c2d_r18\.imagenet is not converted from a published checkpoint"):
        release.release_candidates(["c2d_r18.imagenet"])
    every = release.release_candidates()
    assert {c.tag.status for c in every} <= {"convertible", "available"} and len(every) >= 19
    assert all(c.tag.origin_url and c.tag.origin_format for c in every)


@pytest.mark.slow
def test_pytorchvideo_tags_are_checked_against_pytorchvideos_own_network(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytorchvideo.models import hub as ptv_hub

    torch.manual_seed(0)
    reference = ptv_hub.c2d_r50(pretrained=False).eval()  # random weights; pytorchvideo's hub net as it is
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm3d):  # make every BN statistic matter
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    root = tmp_path / "origin"
    root.mkdir()
    torch.save({"model_state": reference.state_dict()}, root / "C2D_8x8_R50.pyth")  # as its hub stores it
    entry = get_entry("c2d_r50")
    with serve_directory(root) as url:
        tag = dataclasses.replace(entry.tags["kinetics400"], origin_url=f"{url}/C2D_8x8_R50.pyth")
        monkeypatch.setitem(registry._MODELS, "c2d_r50", dataclasses.replace(entry, tags={"kinetics400": tag}))
        (outcome,) = release.release(ORG, patterns=["c2d_r50.kinetics400"], dry_run=True, **files)
    assert outcome.status == "dry-run", outcome.line
    assert "a 1x3x8x64x64 clip gives 400 finite logits" in outcome.line
    assert "logits match pytorchvideo's own network on the downloaded file" in outcome.line


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in release.release_candidates()])
def test_the_tiny_input_is_valid_for_every_releasable_tag(name: str) -> None:
    (candidate,) = release.release_candidates([name])
    data = candidate.entry.data_config.replace(**candidate.tag.data_config)
    with torch.device("meta"):  # shapes only: no weights, no arithmetic
        model = candidate.entry.builder(**candidate.tag.model_args, num_classes=candidate.tag.num_classes)
        logits, _ = release.probe(model.eval(), release.tiny_input(data).to("meta"))
    assert logits.shape[-1] == candidate.tag.num_classes
