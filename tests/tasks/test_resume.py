from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from .tiny import TINY_DATA_CONFIG, TINY_SPEC

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 3


def _config(synthetic_root: str, run_dir: Path, *, stall_marker: Path | None = None) -> Path:
    callbacks: list[dict[str, Any]] = [
        {
            "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
            "init_args": {"dirpath": str(run_dir / "checkpoints"), "save_last": "link", "save_top_k": 1},
        }
    ]
    if stall_marker is not None:
        callbacks.append(
            {
                "class_path": "tests.tasks.stall.StallAt",
                "init_args": {"epoch": 1, "batch": 0, "marker": str(stall_marker)},
            }
        )
    config = {
        "seed_everything": 3,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": EPOCHS,
            "deterministic": True,
            "logger": False,
            "default_root_dir": str(run_dir),
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "limit_val_batches": 1,
            "callbacks": callbacks,
        },
        "model": {
            "class_path": "nlzoo.tasks.VideoClassifier",
            "init_args": {
                "model": "c2d_r18",
                "pretrained": False,
                "lr": 0.05,
                "warmup_epochs": 1,
            },  # dropout 0.5 draws random masks
        },
        "data": {
            "class_path": "nlzoo.data.SyntheticVideoDataModule",
            "init_args": {
                "root": synthetic_root,
                **TINY_SPEC,
                "data_config": TINY_DATA_CONFIG,
                "batch_size": 4,  # 2 steps per epoch: the kill lands between them
                "num_workers": 0,
            },
        },
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.in.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _fit(config: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "nlzoo.cli", "fit", "--config", str(config), *extra]
    return subprocess.Popen(
        command, cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)  # plain tensors and containers
    assert checkpoint["epoch"] == EPOCHS - 1
    return checkpoint["state_dict"]


@pytest.mark.slow
def test_killed_run_resumed_from_last_checkpoint_matches_uninterrupted_run(synthetic_root: str, tmp_path: Path) -> None:
    marker = tmp_path / "stalled"
    killed = _fit(_config(synthetic_root, tmp_path / "killed", stall_marker=marker))
    reference = _fit(_config(synthetic_root, tmp_path / "reference"))
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert killed.poll() is None, killed.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the run never reached the stall point"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)  # a real kill, mid-epoch 1, after epoch 0's checkpoint
    assert killed.wait(timeout=30) == -signal.SIGKILL
    last = torch.load(tmp_path / "killed/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 2

    resumed = _fit(
        _config(synthetic_root, tmp_path / "killed"), "--ckpt_path", str(tmp_path / "killed/checkpoints/last.ckpt")
    )
    for process in (reference, resumed):
        output = process.communicate(timeout=240)[0]
        assert process.returncode == 0, output[-3000:]

    expected, got = _final_weights(tmp_path / "reference"), _final_weights(tmp_path / "killed")
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert different == []
