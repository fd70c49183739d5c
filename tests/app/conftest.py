"""A running ``nlzoo serve`` for the page's tests: a tiny video model and a tiny pose model, tight limits.

The server runs in a subprocess on 127.0.0.1 at a free port, exactly as a user starts it, and is always
stopped (SIGTERM) at the end; its upload folder must then be gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nlzoo
from nlzoo.data import SyntheticVideoSpec, generate_synthetic_pose, write_synthetic_videos
from tests.cli.tiny import write_model, write_videos

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120
LIMITS = {"max_file_mb": 0.5, "max_video_seconds": 4.5, "max_image_pixels": 250_000}


@dataclass(frozen=True)
class Served:
    """The running page and the files the tests give it."""

    url: str
    video_model: Path
    pose_model: Path
    video: Path  # 2 s, within the limits
    long_video: Path  # 6 s, over the duration limit
    image: Path  # a synthetic figure for the pose model
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_files(root: Path) -> dict[str, Path]:
    write_model(root / "video_model")
    pose = nlzoo.load("simplebaseline_r18_nl", pretrained=False)
    pose.nlzoo_config.data_config = pose.nlzoo_config.data_config.replace(crop_size=(96, 64))
    nlzoo.save_pretrained(pose, root / "pose_model")
    spec = SyntheticVideoSpec(num_train=1, num_val=0, num_test=0, num_frames=48, size=(40, 56), object_size=6, margin=4)
    long_root = write_synthetic_videos(root / "long", spec)
    pose_root = generate_synthetic_pose(root / "pose", splits=(("val", 1),), image_size=(120, 150))
    return {
        "video_model": root / "video_model",
        "pose_model": root / "pose_model",
        "video": write_videos(root / "videos", count=1)[0],
        "long_video": long_root / "videos" / "train" / "00000.mp4",
        "image": pose_root / "images" / "val" / "000001.png",
    }


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nlzoo serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"nlzoo serve did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    files = _write_files(root)
    uploads = root / "gradio"
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(uploads),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    limits = [f"--{k.replace('_', '-')}={v}" for k, v in LIMITS.items()]
    command = [sys.executable, "-m", "nlzoo.cli", "serve", "--port", str(port), "--device", "cpu"]
    command += ["--model", str(files["video_model"]), "--model", str(files["pose_model"]), "--precision", "fp32"]
    log = root / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([*command, *limits], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, process, log)
        yield Served(url, log=log, **files)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()[-3000:]
    left = [str(p) for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []
    assert not left, f"the server left uploaded files behind: {left}"
