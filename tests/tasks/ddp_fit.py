"""Launched by test_ddp.py as ``python tests/tasks/ddp_fit.py DATA_ROOT OUT_DIR``.

A 2-process CPU DDP run (gloo): one epoch of training, then the multi-view test. Lightning starts rank 1
by re-running this script. Each rank writes the dataset indices it saw and the metrics it logged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from nlzoo.tasks import VideoClassifier
from tests.tasks.tiny import tiny_data, trainer_args


class RecordIndices(pl.Callback):
    def __init__(self) -> None:
        self.train: list[int] = []
        self.test: list[int] = []

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self.train += batch["index"].tolist()

    def on_test_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.test += batch["index"].unique().tolist()


def main(root: str, out: Path) -> None:
    pl.seed_everything(0)
    data = tiny_data(root)
    task = VideoClassifier("c2d_r18", pretrained=False, num_classes=data.num_classes, lr=0.05)
    seen = RecordIndices()
    trainer = pl.Trainer(
        **trainer_args(devices=2, strategy="ddp", callbacks=[seen]),
        max_epochs=1,
        limit_val_batches=0,
    )
    trainer.fit(task, data)
    (metrics,) = trainer.test(task, data, verbose=False)
    rank = trainer.global_rank
    (out / f"rank{rank}.json").write_text(json.dumps({"train": seen.train, "test": seen.test, "metrics": metrics}))
    if rank == 0:
        torch.save(task.model.state_dict(), out / "weights.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
