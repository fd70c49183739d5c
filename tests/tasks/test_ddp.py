from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from nlzoo.tasks import VideoClassifier

from .tiny import TINY_SPEC, tiny_data, trainer_args

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_ddp_splits_data_and_gathers_video_metrics(synthetic_root: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, str(REPO / "tests/tasks/ddp_fit.py"), synthetic_root, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    # Training: each rank a disjoint half of the 8 videos.
    train = [set(r["train"]) for r in ranks]
    assert len(ranks[0]["train"]) == len(ranks[1]["train"]) == 4
    assert train[0].isdisjoint(train[1]) and train[0] | train[1] == set(range(TINY_SPEC["num_train"]))

    # Test: 5 videos on 2 ranks, so the sampler repeats one; the metric must count it once.
    test = [set(r["test"]) for r in ranks]
    assert test[0] | test[1] == set(range(TINY_SPEC["num_test"])) and len(test[0] & test[1]) == 1
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert ranks[0]["metrics"]["test/videos"] == TINY_SPEC["num_test"]

    # The same weights evaluated in one process give the same video-level accuracy.
    task = VideoClassifier("c2d_r18", pretrained=False, num_classes=2)
    task.model.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    (single,) = pl.Trainer(**trainer_args()).test(task, tiny_data(synthetic_root), verbose=False)
    assert single["test/videos"] == TINY_SPEC["num_test"]
    assert single["test/top1"] == pytest.approx(ranks[0]["metrics"]["test/top1"], abs=1e-6)
