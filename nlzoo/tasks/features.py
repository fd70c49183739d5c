"""Feature extraction as a Lightning predict loop: a module that turns window chunks into features and a
:class:`~pytorch_lightning.callbacks.BasePredictionWriter` that stores them, one set of files per video.

Lightning's DDP spreads the videos over devices and nodes (the dataset deals whole videos to ranks). Each
video's outputs are written atomically (a temporary file renamed into place) and its ``<key>.json`` record
last, so a video counts as done only when that record exists and matches the run's settings; a rerun skips
done videos and redoes the rest. Rank 0 writes ``index.csv`` (one row per window, one per failed or skipped
video with its reason) once every rank has finished.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch import nn

from ..files import atomic_write_bytes
from ..models.features import stage_index
from ..precision import inference_precision

OutputFormat = Literal["npy", "safetensors"]
SPECIAL_LAYERS = ("pre_logits", "logits")
INDEX_COLUMNS = ("video", "features", "status", "reason", "window", "start_s", "end_s", "shape")


def layer_names(model: nn.Module) -> list[str]:
    """What ``--layer`` accepts for ``model``: pre_logits, logits and its feature stages' module names."""
    return [*SPECIAL_LAYERS, *(info["module"] for info in getattr(model, "feature_info", []))]


def feature_function(model: nn.Module, layer: str, *, pool: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> features`` for ``layer``: ``pre_logits`` (pooled, before the classifier), ``logits``, or a stage
    (``layer3``; pooled over T, H, W unless ``pool=False``).

    Raises:
        UnknownNameError: an unknown layer (the message lists close matches).
    """
    if layer == "pre_logits":
        return lambda x: model.forward_head(model.forward_features(x), pre_logits=True)
    if layer == "logits":
        return model
    index = stage_index(getattr(model, "feature_info", []), layer)

    def stage(x: torch.Tensor) -> torch.Tensor:
        fmap = model.forward_intermediates(x, indices=[index], intermediates_only=True)[0]
        return fmap.mean(dim=tuple(range(2, fmap.dim()))) if pool else fmap

    return stage


class FeatureExtractionTask(pl.LightningModule):
    """Runs ``layer`` of ``model`` on window chunks under the inference precision (``nlzoo.precision``).

    Args:
        model: a video network (eval mode; channels-last where it helps, see ``load_for_inference``).
        layer: ``pre_logits``, ``logits`` or a stage name from ``model.feature_info``.
        pool: average stage maps over (T, H, W).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
    """

    def __init__(
        self, model: nn.Module, *, layer: str = "pre_logits", pool: bool = True, precision: str = "auto"
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.layer, self.pool, self.precision_name = layer, pool, precision
        self.features = feature_function(model, layer, pool=pool)

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> dict[str, Any]:
        windows = batch["windows"]
        out = {k: v for k, v in batch.items() if k != "windows"}
        if windows.numel() == 0:
            return {**out, "features": None}
        with inference_precision(self.precision_name, self.device):
            feats = self.features(windows.to(self.device, non_blocking=True))
        crops = windows.shape[0] // batch["start_s"].shape[0]
        feats = feats.float().cpu()
        return {**out, "features": feats.reshape(-1, crops, *feats.shape[1:])}


class FeatureFileWriter(BasePredictionWriter):
    """Collects each video's chunks and writes ``<out>/<key>.npy`` and/or ``.safetensors`` + ``<key>.json``.

    Args:
        out_dir: the output folder.
        settings: what produced the features (model, layer, stride, ...); a done video must match them.
        formats: ``npy`` (array (windows, crops, *feature)) and/or ``safetensors`` (``features``, ``start_s``,
            ``end_s``).
        all_videos: ``(path, key)`` of every input video, for the index (done ones included).
        progress_total: videos this rank processes (for the progress bar; 0 hides it).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        settings: dict[str, Any],
        formats: Sequence[OutputFormat] = ("npy",),
        all_videos: Sequence[tuple[str, str]] = (),
        progress_total: int = 0,
    ) -> None:
        super().__init__(write_interval="batch")
        self.out_dir, self.settings, self.formats = Path(out_dir), settings, tuple(formats)
        self.all_videos, self.progress_total = list(all_videos), progress_total
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._progress: Any = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.progress_total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("extracting features"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
            )
            self._progress.start()
            self._task = self._progress.add_task("videos", total=self.progress_total)

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: dict[str, Any],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        key = prediction["key"]
        self._pending.setdefault(key, []).append(prediction)
        if prediction["last"]:
            self.write_video(self._pending.pop(key))
            if self._progress is not None:
                self._progress.advance(self._task)

    def write_video(self, chunks: list[dict[str, Any]]) -> None:
        """Write one video's files, then its record (the marker that it is done)."""
        head = chunks[0]
        key, record = head["key"], {"video": head["path"], "key": head["key"], "settings": self.settings}
        if head["error"] is not None:
            record.update(status="error", reason=head["error"], files=[])
        else:
            features = torch.cat([c["features"] for c in chunks]).numpy()
            start = torch.cat([c["start_s"] for c in chunks]).numpy()
            end = torch.cat([c["end_s"] for c in chunks]).numpy()
            files = []
            for fmt in self.formats:
                files.append(self._write_features(key, fmt, features, start, end))
            record.update(
                status="ok",
                reason="",
                files=files,
                shape=list(features.shape),
                start_s=start.tolist(),
                end_s=end.tolist(),
                fps=head["fps"],
                num_frames=head["num_frames"],
            )
        atomic_write_bytes(self.record_path(key), json.dumps(record, indent=1).encode())

    def _write_features(self, key: str, fmt: str, features: np.ndarray, start: np.ndarray, end: np.ndarray) -> str:
        path = self.out_dir / f"{key}.{fmt}"
        if fmt == "npy":
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(features))
            atomic_write_bytes(path, buffer.getvalue())
        else:
            from safetensors.numpy import save

            tensors = {"features": np.ascontiguousarray(features), "start_s": start, "end_s": end}
            atomic_write_bytes(path, save(tensors, metadata={"video": key}))
        return path.name

    def record_path(self, key: str) -> Path:
        return self.out_dir / f"{key}.json"

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is not None:
            self._progress.stop()
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            write_index(self.out_dir, self.all_videos)


def read_record(out_dir: Path, key: str) -> dict[str, Any] | None:
    """A video's record, or ``None`` when it is missing or unreadable (a partial run)."""
    try:
        return json.loads((out_dir / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_done(out_dir: Path, key: str, settings: dict[str, Any], formats: Sequence[str]) -> bool:
    """Whether a previous run finished this video with the same settings (failed videos are retried)."""
    record = read_record(out_dir, key)
    if record is None or record.get("status") != "ok" or record.get("settings") != settings:
        return False
    wanted = {f"{Path(key).name}.{fmt}" for fmt in formats}
    return wanted <= set(record.get("files", ())) and all((out_dir / f"{key}.{fmt}").is_file() for fmt in formats)


def write_index(out_dir: Path, videos: Sequence[tuple[str, str]]) -> Path:
    """``index.csv``: a row per window (video, feature file, times in seconds, shape) and a row per video that
    failed or was skipped (with the reason) or has no record (not processed)."""
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for path, key in videos:
        record = read_record(out_dir, key)
        if record is None:
            writer.writerow([path, "", "missing", "not processed (run again to resume)", "", "", "", ""])
        elif record["status"] != "ok":
            writer.writerow([path, "", record["status"], record["reason"], "", "", "", ""])
        else:
            shape = "x".join(map(str, record["shape"][1:]))
            file = (Path(key).parent / record["files"][0]).as_posix()
            for i, (start, end) in enumerate(zip(record["start_s"], record["end_s"], strict=True)):
                writer.writerow([path, file, "ok", "", i, f"{start:.6f}", f"{end:.6f}", shape])
    index = out_dir / "index.csv"
    atomic_write_bytes(index, rows.getvalue().encode())
    return index


__all__ = ["FeatureExtractionTask", "FeatureFileWriter", "is_done", "write_index"]
