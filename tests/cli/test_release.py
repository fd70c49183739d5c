"""``nlzoo release``: one line per tag, exit code 2 when any tag failed, one-line errors before any work."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nlzoo
from nlzoo.cli import main as cli_main
from nlzoo.zoo.records import RECORD_PATH, load_records
from tests.zoo.converters.layouts import randomise, write_caffe2
from tests.zoo.releasing import (
    ARCH,
    CHECKPOINT,
    ORG,
    FakeHfApi,
    add_tiny_tags,
    install_fake_hub,
    no_saved_token,
    serve_directory,
    tiny_tag,
)


@pytest.fixture(scope="module")
def origin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The publisher's files: a tiny Caffe2 checkpoint and, under mirror/, a copy with one bit flipped."""
    root = tmp_path_factory.mktemp("origin")
    write_caffe2(randomise(nlzoo.load(ARCH, pretrained=False, num_classes=5)), root / CHECKPOINT, sgd_state=False)
    data = bytearray((root / CHECKPOINT).read_bytes())
    data[-100] ^= 1
    (root / "mirror").mkdir()
    (root / "mirror" / CHECKPOINT).write_bytes(bytes(data))
    return root


@pytest.fixture
def tags(origin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``ARCH.tiny_bad`` (its download is tampered with) and ``ARCH.tiny_ok``, both served on loopback."""
    expected = hashlib.sha256((origin_dir / CHECKPOINT).read_bytes()).hexdigest()
    with serve_directory(origin_dir) as url:
        add_tiny_tags(
            monkeypatch,
            tiny_tag("tiny_bad", f"{url}/mirror/{CHECKPOINT}", origin_sha256=expected),
            tiny_tag("tiny_ok", f"{url}/{CHECKPOINT}", origin_sha256=expected),
        )
        yield


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[FakeHfApi]:
    no_saved_token(monkeypatch, tmp_path)
    return install_fake_hub(monkeypatch)


def _paths(tmp_path: Path) -> list[str]:
    shutil.copyfile(RECORD_PATH, tmp_path / "published.json")
    (tmp_path / "checkpoints.md").write_text("stale\n")
    return ["--out", str(tmp_path / "out"), "--record", str(tmp_path / "published.json"),
            "--checkpoints-md", str(tmp_path / "checkpoints.md")]  # fmt: skip


def test_release_prints_a_line_per_tag_and_exits_2_when_one_failed(
    tags: None, hub: type[FakeHfApi], tmp_path: Path, capsys: Any
) -> None:
    argv = ["release", ORG, "--tags", f"{ARCH}.tiny_*", "--token", "hf_cli", "--private", *_paths(tmp_path)]
    assert cli_main(argv) == 2
    lines = capsys.readouterr().out.splitlines()
    bad, ok, summary, advice = lines
    assert bad.startswith(f"{ARCH}.tiny_bad: FAILED: ") and "tampered, truncated or replaced" in bad
    assert ok.startswith(f"{ARCH}.tiny_ok: published hf-hub:{ORG}/{ARCH}.tiny_ok@")
    assert summary == "2 tags: 1 published, 1 failed" and "commit nlzoo/zoo/published.json" in advice
    assert [name for name, _ in hub.calls] == ["HfApi", "whoami", "HfApi", "create_repo", "upload_folder"]
    assert hub.calls[0][1]["token"] == "hf_cli"
    assert hub.calls[3][1]["private"] is True and hub.calls[3][1]["repo_id"] == f"{ORG}/{ARCH}.tiny_ok"
    assert list(load_records(tmp_path / "published.json")) == [f"{ARCH}.tiny_ok"]
    assert "| published |" in (tmp_path / "checkpoints.md").read_text()


def test_dry_run_needs_no_token_and_pushes_nothing(
    tags: None, hub: type[FakeHfApi], tmp_path: Path, capsys: Any
) -> None:
    assert cli_main(["release", ORG, "--tags", f"{ARCH}.tiny_ok", "--dry-run", *_paths(tmp_path)]) == 0
    line, summary = capsys.readouterr().out.splitlines()
    folder = tmp_path / "out" / f"{ARCH}.tiny_ok"
    assert line.startswith(f"{ARCH}.tiny_ok: dry run: would push {folder} to {ORG}/{ARCH}.tiny_ok (public)")
    assert summary == "1 tags: 1 dry-run"
    assert hub.calls == [] and load_records(tmp_path / "published.json") == {}
    assert (tmp_path / "checkpoints.md").read_text() == "stale\n"
    assert nlzoo.load(folder).nlzoo_config.pretrained_tag == "tiny_ok"  # a loadable folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([ORG, "--tags", f"{ARCH}.tiny_okk"], f"matches '{ARCH}.tiny_okk'. Did you mean '{ARCH}.tiny_ok'"),
        ([ORG], "uploading to the Hub needs a token and none is configured; log in with `hf auth login`"),
        ([ORG, "--tags", "nothing*", "--dry-run"], "no convertible tag matches 'nothing*'."),
        (
            ["someone-else", "--token", "hf_cli"],
            "the token belongs to 'nlzoo-tester', who cannot create repos in 'someone-else'; use ORG "
            "'nlzoo-tester' or one of their organisations (nlzoo-test)",
        ),
    ],
)
def test_mistakes_are_one_line_before_any_download(
    tags: None, hub: type[FakeHfApi], tmp_path: Path, capsys: Any, args: list[str], message: str
) -> None:
    assert cli_main(["release", *args, *_paths(tmp_path)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("nlzoo release: error: ") and message in line
    assert captured.out == "" and not (tmp_path / "out").exists()
    assert {name for name, _ in hub.calls} <= {"HfApi", "whoami"}  # nothing created or uploaded


def test_org_must_be_a_name(tmp_path: Path, capsys: Any) -> None:
    assert cli_main(["release", "org/repo", "--dry-run", "--out", str(tmp_path / "out")]) == 2
    assert "ORG must be a Hub user or organisation name" in capsys.readouterr().err
