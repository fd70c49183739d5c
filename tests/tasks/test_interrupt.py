"""SIGTERM / Ctrl-C during ``nlzoo fit``: a checkpoint is saved, the exit code says the run did not finish
(143 / 130, as a scheduler expects), and ``--ckpt_path`` resumes it to the end."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import yaml

from .test_resume import EPOCHS, _config, _fit


class SlowBatches(pl.Callback):
    """Write ``marker`` after the first training batch, then make every batch slow, so a signal lands mid-run."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any) -> None:
        self.marker.write_text("running")
        time.sleep(0.5)


def _slow_config(synthetic_root: str, run_dir: Path, marker: Path) -> Path:
    path = _config(synthetic_root, run_dir)
    config = yaml.safe_load(path.read_text())
    slow = {"class_path": "tests.tasks.test_interrupt.SlowBatches", "init_args": {"marker": str(marker)}}
    config["trainer"]["callbacks"].append(slow)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_then_exits_nonzero_and_the_run_resumes(
    synthetic_root: str, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    marker = tmp_path / "running"
    config = _slow_config(synthetic_root, tmp_path / "run", marker)
    run = _fit(config)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert run.poll() is None, run.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.1)
    run.send_signal(signum)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == code, output[-3000:]
    assert f"interrupted by {signum.name}; saved" in output
    last = tmp_path / "run/checkpoints/last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] >= 1 and saved["epoch"] < EPOCHS - 1  # mid-run, not the end

    if signum == signal.SIGINT:
        return  # the same checkpoint path as SIGTERM's; resuming it once (below) is enough
    resumed = _fit(config, "--ckpt_path", str(last))
    output = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, output[-3000:]
    assert f"Restored all states from the checkpoint at {last}" in output
    epochs = [torch.load(p, weights_only=True)["epoch"] for p in (tmp_path / "run/checkpoints").glob("*.ckpt")]
    assert max(epochs) == EPOCHS - 1  # trained to the end
