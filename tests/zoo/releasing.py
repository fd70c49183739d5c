"""Test-side pieces for ``nlzoo release``: a loopback origin serving real checkpoint files, a tiny convertible
tag registered for the test, and huggingface_hub's HfApi replaced at its boundary by a recorder whose methods
bind their arguments to the real signatures (a renamed or removed parameter breaks the tests)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.server
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import huggingface_hub
import pytest
from huggingface_hub import HfApi as RealHfApi  # bound before any test replaces huggingface_hub.HfApi

from nlzoo.zoo import PretrainedTag, get_entry, registry

ARCH = "c2d_r18_nl"
ORG = "nlzoo-test"
USER = "nlzoo-tester"  # the token's user, a member of ORG
CHECKPOINT = "c2d_r18_nl_tiny.pkl"


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Base URL of a real HTTP server on loopback over ``root`` (as the publishers' file servers)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def add_tiny_tags(monkeypatch: pytest.MonkeyPatch, *tags: PretrainedTag) -> None:
    """Register ``tags`` on ``ARCH`` for this test only (the registry entry is restored afterwards)."""
    entry = get_entry(ARCH)
    added = {**entry.tags, **{t.tag: t for t in tags}}
    monkeypatch.setitem(registry._MODELS, ARCH, dataclasses.replace(entry, tags=added))


def tiny_tag(tag: str, url: str, **fields: Any) -> PretrainedTag:
    """A convertible 5-class tag of ``ARCH`` on 4-frame clips, published as a Caffe2 pickle at ``url``."""
    return PretrainedTag(
        tag=tag,
        dataset="Kinetics-400",
        num_classes=5,
        status="convertible",
        label_names=tuple("abcde"),
        data_config={"num_frames": 4},
        metrics={"top1": 61.5, "top5": 88.25},
        origin_url=url,
        origin_format="caffe2",
        license="cc-by-nc-4.0",
        verified="key layout round trip (tests)",
        **fields,
    )


def _bound(method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The call's arguments as the real ``method`` binds them (TypeError for a parameter it does not take)."""
    bound = inspect.signature(method).bind(*args, **kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "self"}


class FakeHfApi:
    """huggingface_hub.HfApi for the methods nlzoo's push calls: records them and the uploaded bytes."""

    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    uploads: ClassVar[list[dict[str, bytes]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("HfApi", _bound(RealHfApi.__init__, self, *args, **kwargs)))

    def whoami(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("whoami", _bound(RealHfApi.whoami, self, *args, **kwargs)))
        return {"name": USER, "orgs": [{"name": ORG}], "auth": {"accessToken": {"role": "write"}}}

    def create_repo(self, *args: Any, **kwargs: Any) -> huggingface_hub.RepoUrl:
        call = _bound(RealHfApi.create_repo, self, *args, **kwargs)
        self.calls.append(("create_repo", call))
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{call['repo_id']}", endpoint="https://huggingface.co")

    def create_branch(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_branch", _bound(RealHfApi.create_branch, self, *args, **kwargs)))

    def upload_folder(self, *args: Any, **kwargs: Any) -> huggingface_hub.CommitInfo:
        call = _bound(RealHfApi.upload_folder, self, *args, **kwargs)
        self.calls.append(("upload_folder", call))
        folder = Path(call["folder_path"])
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.uploads.append(files)
        oid = hashlib.sha1(b"".join(name.encode() + data for name, data in files.items())).hexdigest()
        return huggingface_hub.CommitInfo(
            commit_url=f"https://huggingface.co/{call['repo_id']}/commit/{oid}",
            commit_message=call["commit_message"],
            commit_description="",
            oid=oid,
        )


def install_fake_hub(monkeypatch: pytest.MonkeyPatch) -> type[FakeHfApi]:
    FakeHfApi.calls, FakeHfApi.uploads = [], []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def no_saved_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Hub token anywhere: neither in the environment nor saved by `hf auth login`."""
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
