"""Publishing: ``nlzoo.push_to_hub`` / ``nlzoo push`` at the huggingface_hub boundary (a recording HfApi),
plus a live round trip that runs only with a token and a target repo in the environment."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import pytest
import safetensors.torch
import torch
import yaml

import nlzoo
from nlzoo.cli import main as cli_main

from .hub_client import state_digest

REPO = "someone/c2d-r18-nl-test"


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records each call and the uploaded files' contents."""

    calls: list[tuple[str, dict[str, Any]]]
    uploaded: dict[str, bytes]

    def __init__(self, token: str | None = None) -> None:
        type(self).calls.append(("HfApi", {"token": token}))

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        type(self).calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://hub.invalid/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        type(self).calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, *, folder_path: Path, **kwargs: Any) -> SimpleNamespace:
        type(self).calls.append(("upload_folder", kwargs))
        files = sorted(p for p in Path(folder_path).rglob("*") if p.is_file())
        type(self).uploaded = {p.relative_to(folder_path).as_posix(): p.read_bytes() for p in files}
        url = f"https://hub.invalid/{kwargs['repo_id']}/commit/abc"
        return SimpleNamespace(commit_url=url, oid="a" * 40, pr_url=None)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> type[RecordingHfApi]:
    RecordingHfApi.calls, RecordingHfApi.uploaded = [], {}
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    monkeypatch.setenv("HF_TOKEN", "hf_fixture")  # as for the real Hub, an upload needs a token
    return RecordingHfApi


@pytest.fixture
def model() -> torch.nn.Module:
    return nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=3)


def _front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_push_model_creates_repo_and_uploads_the_save_pretrained_folder(
    api: type[RecordingHfApi], model: torch.nn.Module, tmp_path: Path
) -> None:
    info = nlzoo.push_to_hub(model, REPO, private=True, token="hf_test", commit_message="first")
    assert info.oid == "a" * 40
    assert [name for name, _ in api.calls] == ["HfApi", "create_repo", "upload_folder"]
    assert api.calls[0][1] == {"token": "hf_test"}
    assert api.calls[1][1] == {"repo_id": REPO, "private": True, "exist_ok": True}
    assert api.calls[2][1] == {"repo_id": REPO, "revision": None, "commit_message": "first", "create_pr": False}
    local = nlzoo.save_pretrained(model, tmp_path / "local", repo_id=REPO)
    assert api.uploaded == {p.name: p.read_bytes() for p in local.iterdir()}  # the very same folder
    assert set(api.uploaded) == {"config.json", "model.safetensors", "README.md"}
    card = api.uploaded["README.md"].decode()
    assert f'nlzoo.load("hf-hub:{REPO}")' in card
    assert _front_matter(card)["library_name"] == "nlzoo"
    weights = safetensors.torch.load(api.uploaded["model.safetensors"])
    torch.testing.assert_close(weights, model.state_dict(), rtol=0, atol=0)


def test_push_folder_to_a_branch_or_pr_and_keep_a_hand_written_card(
    api: type[RecordingHfApi], model: torch.nn.Module, tmp_path: Path
) -> None:
    folder = nlzoo.save_pretrained(model, tmp_path / "m")
    assert 'nlzoo.load("path/to/this/folder")' in (folder / "README.md").read_text()
    nlzoo.push_to_hub(folder, REPO, revision="v2")
    assert ("create_branch", {"repo_id": REPO, "branch": "v2", "exist_ok": True}) in api.calls
    assert api.calls[-1][1]["revision"] == "v2"
    assert f'nlzoo.load("hf-hub:{REPO}")' in api.uploaded["README.md"].decode()  # generated card names the repo
    (folder / "README.md").write_text("# My own card\n")
    api.calls.clear()
    nlzoo.push_to_hub(str(folder), REPO, revision="v2", create_pr=True)
    assert [name for name, _ in api.calls] == ["HfApi", "create_repo", "upload_folder"]  # a PR needs no branch
    assert api.calls[-1][1]["create_pr"] is True
    assert api.uploaded["README.md"] == b"# My own card\n"


def test_push_refuses_what_would_not_load_back(
    api: type[RecordingHfApi], model: torch.nn.Module, tmp_path: Path
) -> None:
    folder = nlzoo.save_pretrained(model, tmp_path / "m")
    with pytest.raises(ValueError, match="repo_id must be 'org/name'"):
        nlzoo.push_to_hub(folder, f"{REPO}@main")
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    weights["fc.bias"] += 1
    safetensors.torch.save_file(weights, folder / "model.safetensors")
    with pytest.raises(ValueError, match=r"the weights changed after the folder was written \(edited, damaged"):
        nlzoo.push_to_hub(folder, REPO)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        nlzoo.push_to_hub(folder, REPO)
    assert api.calls == []  # nothing was created on the Hub


def test_cli_push(
    api: type[RecordingHfApi], model: torch.nn.Module, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = nlzoo.save_pretrained(model, tmp_path / "m")
    # No token anywhere: one line saying how to log in, before any call to the Hub.
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    argv = ["push", str(folder), REPO, "--revision", "dev", "--private", "--message", "cli"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hf auth login" in err and "HF_TOKEN" in err
    assert api.calls == []
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")  # following the advice
    assert cli_main(argv) == 0
    assert api.calls[0][1] == {"token": "hf_from_env"}
    out = capsys.readouterr().out
    assert f"https://hub.invalid/{REPO}/commit/abc" in out and f'nlzoo.load("hf-hub:{REPO}@{"a" * 40}")' in out
    assert api.calls[1][1]["private"] is True and api.calls[-1][1]["commit_message"] == "cli"
    assert cli_main(["push", str(tmp_path / "nowhere"), REPO]) == 2
    assert "nowhere does not exist (or is not a folder)" in capsys.readouterr().err


@pytest.mark.live
@pytest.mark.skipif(
    not (os.environ.get("NLZOO_LIVE_HUB_REPO") and os.environ.get("HF_TOKEN")),
    reason="live Hub test: set NLZOO_LIVE_HUB_REPO=org/name (a repo you may write) and HF_TOKEN",
)
def test_live_push_then_load_back(model: torch.nn.Module, tmp_path: Path) -> None:
    repo = os.environ["NLZOO_LIVE_HUB_REPO"]
    info = nlzoo.push_to_hub(model, repo, commit_message="nlzoo live test")
    loaded = nlzoo.load(f"hf-hub:{repo}@{info.oid}", cache_dir=tmp_path)
    assert state_digest(loaded) == state_digest(model)
    assert loaded.nlzoo_config.provenance["hub_revision"] == info.oid


def test_a_refused_token_is_one_line(
    api: type[RecordingHfApi], model: torch.nn.Module, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    def refuse(self: RecordingHfApi, repo_id: str, **kwargs: Any) -> str:
        request = httpx.Request("POST", "https://hub.invalid/api/repos/create")
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=httpx.Response(401, request=request))

    monkeypatch.setattr(RecordingHfApi, "create_repo", refuse)
    folder = nlzoo.save_pretrained(model, tmp_path / "m")
    assert cli_main(["push", str(folder), REPO, "--token", "hf_expired"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the token" in err[0] and "hf auth login" in err[0]
