"""An unreachable Hub is reported within ``NLZOO_HUB_TIMEOUT`` (default 10 s), not after ~25 s of retries.

huggingface_hub reads ``HF_ENDPOINT`` at import, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlzoo.errors import ConfigError
from nlzoo.zoo.hub import hub_timeout

SCRIPT = """
import json, time
import nlzoo
start = time.perf_counter()
try:
    nlzoo.load("hf-hub:org/model")
    result = {"error": None}
except Exception as err:
    result = {"error": type(err).__name__, "message": str(err)}
result["seconds"] = time.perf_counter() - start
print(json.dumps(result))
"""


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a black-holed proxy, a hung mirror)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def _run(tmp_path: Path, endpoint: str, timeout: str | None) -> dict[str, object]:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("NLZOO_HUB_TIMEOUT", None)
    if timeout is not None:
        env["NLZOO_HUB_TIMEOUT"] = timeout
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_silent_hub_fails_within_the_configured_timeout(tmp_path: Path, silent_server: int) -> None:
    result = _run(tmp_path, f"http://127.0.0.1:{silent_server}", "1.5")
    assert result["error"] == "HubUnavailableError"
    assert "no answer within 1.5 s (NLZOO_HUB_TIMEOUT)" in str(result["message"])
    # huggingface_hub alone retries for ~25 s; one request bounded by the timeout, plus slack for a loaded machine
    assert float(result["seconds"]) < 10, result


def test_a_refused_connection_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _run(tmp_path, f"http://127.0.0.1:{port}", None)
    assert result["error"] == "HubUnavailableError" and float(result["seconds"]) < 10, result
    assert "no answer within 10 s" in str(result["message"])


@pytest.mark.parametrize("text", ["soon", "0", "-1", "inf", "nan"])
def test_a_bad_timeout_is_a_config_error(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLZOO_HUB_TIMEOUT", text)
    with pytest.raises(ConfigError, match="NLZOO_HUB_TIMEOUT must be a number of seconds > 0"):
        hub_timeout()
    monkeypatch.setenv("NLZOO_HUB_TIMEOUT", "2.5")
    assert hub_timeout() == 2.5
