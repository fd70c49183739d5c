"""A callback for the resume test: at a chosen batch it writes a marker file and hangs until killed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class StallAt(pl.Callback):
    """Hang after batch ``batch`` of epoch ``epoch`` (so the test can SIGKILL a run mid-epoch)."""

    def __init__(self, epoch: int, batch: int, marker: str) -> None:
        self.epoch, self.batch, self.marker = epoch, batch, Path(marker)

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            self.marker.write_text("stalled")
            time.sleep(600)
