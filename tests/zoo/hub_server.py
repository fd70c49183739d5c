"""A real Hub-compatible server on loopback for the Hub tests: olah serving local git repos, offline.

olah runs from its own venv (``make test`` creates ``.venv-olah`` and exports ``NLZOO_OLAH_CLI``); without
it the Hub tests skip, unless ``NLZOO_REQUIRE_OLAH=1`` (CI), where they fail. huggingface_hub reads
``HF_ENDPOINT`` when imported, so the code under test runs in a subprocess (``hub_client.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
START_TIMEOUT_S = 30
CLIENT_TIMEOUT_S = 120


def olah_python() -> Path:
    """The interpreter of olah's venv, from ``NLZOO_OLAH_CLI``; skip (or fail, in CI) when it is absent."""
    cli = os.environ.get("NLZOO_OLAH_CLI")
    python = Path(cli).parent / "python" if cli else None
    if python is None or not python.exists() or shutil.which("git") is None:
        reason = (
            "Hub download tests need olah (a local Hub server) and git: run `make test`, or create a venv with "
            "`python3 -m venv .venv-olah && .venv-olah/bin/pip install olah==0.5.4` and set "
            "NLZOO_OLAH_CLI=$PWD/.venv-olah/bin/olah-cli"
        )
        if os.environ.get("NLZOO_REQUIRE_OLAH") == "1":
            pytest.fail(f"NLZOO_REQUIRE_OLAH=1 but olah is unavailable (NLZOO_OLAH_CLI={cli!r}). {reason}")
        pytest.skip(reason)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def olah_server(root: Path) -> Iterator[tuple[str, Path]]:
    """Start olah on a free loopback port serving git repos under ``<root>/mirrors/models/<org>/<repo>``.

    Yields:
        The endpoint URL and the mirrors folder. The server is stopped on exit.
    """
    python = olah_python()
    port = free_port()
    mirrors, logs = root / "mirrors", root / "logs"
    mirrors.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    config = root / "olah.toml"
    config.write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{mirrors}"]\nmirror-scheme = "http"\nmirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\n[accessibility]\noffline = true\n'
    )
    with (logs / "stdout.log").open("wb") as out:
        proc = subprocess.Popen(
            [python, HERE / "olah_launcher.py", "-c", config, "--log-path", logs],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    try:
        _wait_until_listening(proc, port, logs / "stdout.log")
        yield f"http://127.0.0.1:{port}", mirrors
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"olah exited with {proc.returncode} before listening:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"olah did not listen on port {port} within {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


class GitModelRepo:
    """A Hub model repo as olah serves it: a plain git repository (branch ``main``, no LFS needed)."""

    def __init__(self, mirrors: Path, repo_id: str) -> None:
        self.repo_id = repo_id
        self.path = mirrors / "models" / repo_id
        self.path.mkdir(parents=True)
        self._git("init", "-q", "-b", "main")

    def commit(self, files: dict[str, bytes | Path], message: str, *, branch: str = "main") -> str:
        """Commit ``files`` (name -> bytes, or a file to copy) on ``branch``; returns the commit sha."""
        if branch != "main":  # branches start from main's head; between calls main is checked out
            self._git("checkout", "-q", *([] if self._git("branch", "--list", branch) else ["-b"]), branch)
        for name, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            (self.path / name).write_bytes(data)
        self._git("add", *files)
        self._git("commit", "-q", "-m", message)
        sha = self._git("rev-parse", "HEAD")
        if branch != "main":
            self._git("checkout", "-q", "main")
        return sha

    def _git(self, *args: str) -> str:
        # Uncompressed objects: the test weights are random floats that do not compress anyway.
        config = ["-c", "user.name=nlzoo tests", "-c", "user.email=tests@nlzoo.invalid", "-c", "core.compression=0"]
        done = subprocess.run(["git", *config, *args], cwd=self.path, capture_output=True, text=True, check=True)
        return done.stdout.strip()


def run_client(steps: list[dict[str, Any]], *, endpoint: str, hf_home: Path, offline: bool = False) -> list[dict]:
    """Run ``hub_client.py`` in a fresh interpreter whose huggingface_hub talks to ``endpoint``.

    Returns:
        One result dict per step (see hub_client.py).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1" if offline else "0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_ETAG_TIMEOUT="5",
        HF_HUB_DOWNLOAD_TIMEOUT="30",
    )
    done = subprocess.run(
        [sys.executable, HERE / "hub_client.py"],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        env=env,
        timeout=CLIENT_TIMEOUT_S,
    )
    if done.returncode != 0:
        pytest.fail(f"hub_client.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
