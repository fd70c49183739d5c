"""``nlzoo.load("hf-hub:...")`` and Hub-backed registry tags, downloaded over HTTP from a real Hub-compatible
server (olah on loopback) into huggingface_hub's cache, in subprocesses (see hub_server.py)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import nlzoo
from nlzoo.zoo.folder import file_sha256

from .hub_client import state_digest
from .hub_server import GitModelRepo, free_port, olah_server, run_client

REPO = "nlzoo-test/c2d-r18-nl"
FOLDER_FILES = ("config.json", "model.safetensors", "README.md")


@dataclass
class Hub:
    endpoint: str
    c1: str  # first commit: weights v1
    c2: str  # second commit (main): weights v2
    digests: dict[str, str]  # commit -> state digest of the model published there
    weights_sha256: dict[str, str]  # commit -> sha256 of its model.safetensors


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    root = tmp_path_factory.mktemp("hub")
    with olah_server(root / "server") as (endpoint, mirrors):
        repo = GitModelRepo(mirrors, REPO)
        commits, digests, shas = [], {}, {}
        for version in ("v1", "v2"):
            model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=3)
            torch.nn.init.normal_(model.fc.weight)  # two versions that differ everywhere, head included
            folder = nlzoo.save_pretrained(model, root / version, repo_id=REPO)
            sha = repo.commit({name: folder / name for name in FOLDER_FILES}, f"weights {version}")
            commits.append(sha)
            digests[sha], shas[sha] = state_digest(model), file_sha256(folder / "model.safetensors")
        # A truncated upload on a branch: 130 bytes, also a size olah 0.5.4 crashed on (see olah_launcher.py).
        repo.commit({"model.safetensors": (root / "v2" / "model.safetensors").read_bytes()[:130]}, "cut", branch="cut")
        GitModelRepo(mirrors, "nlzoo-test/not-a-model").commit({"README.md": b"# just a card\n"}, "card")
        yield Hub(endpoint, commits[0], commits[1], digests, shas)


@pytest.fixture(scope="module")
def warm(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """An HF_HOME filled by a first download of main, then of both pinned commits; then the error cases."""
    hf_home = tmp_path_factory.mktemp("warm")
    names = [f"hf-hub:{REPO}", f"hf-hub:{REPO}@{hub.c1}", f"hf-hub:{REPO}@{hub.c2}"]
    names += ["hf-hub:nlzoo-test/no-such-repo", f"hf-hub:{REPO}@no-such-branch", "hf-hub:nlzoo-test/not-a-model"]
    return hf_home, run_client([{"op": "load", "name": n} for n in names], endpoint=hub.endpoint, hf_home=hf_home)


def _copy_of(hf_home: Path, tmp_path: Path) -> Path:
    """A private copy of a warm cache (snapshot symlinks kept), for a test that damages it."""
    return Path(shutil.copytree(hf_home, tmp_path / "hf_home", symlinks=True))


def _blobs(hf_home: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in hf_home.glob("hub/models--*/blobs/*")}


def test_first_download_gives_the_published_model(hub: Hub, warm: tuple[Path, list[dict]]) -> None:
    hf_home, (main, *_) = warm
    assert main["ok"], main
    assert main["digest"] == hub.digests[hub.c2]
    assert main["provenance"] == {"hub_repo": REPO, "hub_revision": hub.c2}
    snapshot = hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / hub.c2
    assert {p.name for p in snapshot.iterdir()} == {"config.json", "model.safetensors"}


def test_pinned_revisions_give_their_own_weights(hub: Hub, warm: tuple[Path, list[dict]]) -> None:
    _, (_, at_c1, at_c2, *_) = warm
    assert at_c1["ok"] and at_c2["ok"]
    assert at_c1["digest"] == hub.digests[hub.c1] != hub.digests[hub.c2] == at_c2["digest"]
    assert at_c1["provenance"]["hub_revision"] == hub.c1


def test_cache_hit_needs_no_server_and_downloads_nothing(hub: Hub, warm: tuple[Path, list[dict]]) -> None:
    hf_home, _ = warm
    before = _blobs(hf_home)
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    names = [f"hf-hub:{REPO}", f"hf-hub:{REPO}@{hub.c1}"]
    main, at_c1 = run_client([{"op": "load", "name": n} for n in names], endpoint=unreachable, hf_home=hf_home)
    assert main["digest"] == hub.digests[hub.c2] and at_c1["digest"] == hub.digests[hub.c1]
    assert _blobs(hf_home) == before


def test_offline_mode_uses_a_warm_cache_and_explains_a_cold_one(
    hub: Hub, warm: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    hf_home, _ = warm
    steps = [
        {"op": "load", "name": f"hf-hub:{REPO}"},
        {"op": "load", "name": f"hf-hub:{REPO}@{hub.c1}"},
        {"op": "load", "name": f"hf-hub:{REPO}", "kwargs": {"cache_dir": str(tmp_path / "cold")}},
    ]
    main, at_c1, cold = run_client(steps, endpoint=hub.endpoint, hf_home=hf_home, offline=True)
    assert main["digest"] == hub.digests[hub.c2] and at_c1["digest"] == hub.digests[hub.c1]
    assert not cold["ok"] and cold["error"] == "HubUnavailableError", cold
    assert "not in the cache" in cold["message"] and "HF_HUB_OFFLINE=1" in cold["message"]
    assert "nlzoo.load('path/to/folder')" in cold["message"]


def test_missing_repo_revision_or_file_are_clear_errors(warm: tuple[Path, list[dict]]) -> None:
    _, (*_, repo, revision, file) = warm
    assert "FileNotFoundError" in repo["bases"] and "nlzoo-test/no-such-repo' was not found" in repo["message"]
    assert "needs a token (HF_TOKEN" in repo["message"]
    assert "revision 'no-such-branch' does not exist" in revision["message"]
    assert "nlzoo-test/not-a-model has no file 'config.json'" in file["message"]


def test_registry_tags_pin_a_commit_and_refuse_other_bytes(
    hub: Hub, warm: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    """A tag = repo + pinned commit + sha256. Bytes other than the registry's (a tampered mirror) are refused,
    evicted from the cache, and never loaded from it later."""
    arch = "hubtest_c2d_r18_nl"
    v1_sha = hub.weights_sha256[hub.c1]
    tags = [
        {"tag": "good", "num_classes": 3, "repo_id": REPO, "revision": hub.c1, "sha256": v1_sha},
        {"tag": "tampered", "num_classes": 3, "repo_id": REPO, "revision": hub.c2, "sha256": v1_sha},
    ]
    where = {"repo_id": REPO, "filename": "model.safetensors", "revision": hub.c2}
    steps = [
        {"op": "register", "arch": arch, "base": "c2d_r18_nl", "tags": tags},
        {"op": "load", "name": f"{arch}.good"},
        {"op": "load", "name": f"{arch}.good", "kwargs": {"num_classes": 5}},
        {"op": "load", "name": f"{arch}.tampered"},
        {"op": "cached", **where},
        {"op": "load", "name": f"{arch}.tampered", "kwargs": {"local_files_only": True}},
    ]
    hf_home = _copy_of(warm[0], tmp_path)
    _, good, new_head, tampered, cached, again = run_client(steps, endpoint=hub.endpoint, hf_home=hf_home)
    assert good["digest"] == hub.digests[hub.c1]
    assert good["provenance"]["source"].startswith(f"hf-hub:{REPO}@{hub.c1} (model.safetensors, sha256 ")
    assert "metrics" not in new_head["provenance"] and "re-initialised for 5" in new_head["provenance"]["classifier"]
    assert tampered["error"] == "ChecksumMismatchError", tampered
    message = tampered["message"]
    assert message.startswith(f"{arch}.tampered: model.safetensors of {REPO}@{hub.c2} failed its integrity check")
    assert f"expected sha256 {hub.weights_sha256[hub.c1]}, found {hub.weights_sha256[hub.c2]}" in message
    assert "removed from the cache" in message and "https://example.invalid/original-checkpoint" in message
    assert cached == {"cached": False}
    assert again["error"] == "HubUnavailableError"


def test_truncated_or_corrupted_weights_are_refused_then_fetched_again(
    hub: Hub, warm: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    """hf-hub: loads check the weights against the sha256 their config.json records, on every load."""
    where = {"repo_id": REPO, "filename": "model.safetensors", "revision": hub.c2}
    steps = [
        {"op": "load", "name": f"hf-hub:{REPO}@cut"},
        {"op": "load", "name": f"hf-hub:{REPO}"},
        {"op": "corrupt_cache", **where},
        {"op": "load", "name": f"hf-hub:{REPO}"},
        {"op": "cached", **where},
        {"op": "load", "name": f"hf-hub:{REPO}"},
    ]
    hf_home = _copy_of(warm[0], tmp_path)
    cut, first, _, corrupted, cached, refetched = run_client(steps, endpoint=hub.endpoint, hf_home=hf_home)
    assert cut["error"] == "ChecksumMismatchError" and f"expected sha256 {hub.weights_sha256[hub.c2]}" in cut["message"]
    assert first["digest"] == hub.digests[hub.c2]
    assert corrupted["error"] == "ChecksumMismatchError" and "tampered, truncated or corrupted" in corrupted["message"]
    assert cached == {"cached": False}
    assert refetched["digest"] == hub.digests[hub.c2]
