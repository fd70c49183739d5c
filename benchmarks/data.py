"""Is video training IO-bound here? Decode + augment throughput against model training throughput, and what
the exact frame index costs.

Writes a few H.264 test videos (Kinetics-like: 340x256 at 30 fps unless --quick), then measures in one run:

- the exact frame index (a demux-only packet scan per open) against the reader it replaced (frame count and
  rate from the header; loaded from git history), interleaved on the same files: decode + augment clips/s
  with the index cached (every epoch after the first) and scanned at every open (the first epoch);
- the time to open a 10-minute video (--long-minutes): the header reader, the packet scan, a decode scan
  (``exact=True``) and a cached index;

- the training pipeline (PyAV seek + decode, random short-side scale, crop, flip, normalise; the model's
  data config) in clips/s, in the main process and with DataLoader worker processes; every registered
  decoder backend is measured;
- training steps (forward, backward, SGD) of each model on random clips of the same shape, in clips/s.

The ratio pipeline / training above 1 means loading keeps up; below 1, training waits for data. On a CPU-only
machine both compete for the same cores, so read the ratio for GPU training (``--device cuda``).

    python benchmarks/data.py                 # 8x224x224 clips, batch 8, i3d_r18_nl and i3d_r50_nl
    python benchmarks/data.py --quick --json  # small sizes (a smoke test), JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

from nlzoo import load
from nlzoo.data import EpochSampler, VideoClipDataset, VideoItem, collate_clips, default_num_workers
from nlzoo.data.synthetic import write_mp4
from nlzoo.data.video_index import INDEX_CACHE, IndexCache
from nlzoo.data.video_pyav import PyAVReader
from nlzoo.data.video_reader import register_backend
from nlzoo.data.video_torchcodec import torchcodec_unavailable

# The reader before the exact index: frame count from the header, index = pts x average rate.
HEADER_READER_COMMIT = "1adc550"


def write_test_videos(folder: Path, *, count: int, frames: int, size: tuple[int, int], fps: int) -> list[Path]:
    """Moving squares over a noisy gradient: compresses like camera footage more than flat colours do."""
    rng = np.random.default_rng(0)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    paths = []
    for i in range(count):
        base = (ys / h * 120 + xs / w * 60 + rng.uniform(0, 60))[..., None] + np.zeros(3)
        video = np.empty((frames, h, w, 3), np.uint8)
        start, velocity = rng.uniform(0, [h - 40, w - 40]), rng.uniform(-3, 3, 2)
        for t in range(frames):
            frame = base + rng.normal(0, 6, (h, w, 3))
            y, x = np.clip(start + t * velocity, 0, [h - 40, w - 40]).astype(int)
            frame[y : y + 40, x : x + 40] = rng.uniform(0, 255, 3)
            video[t] = np.clip(frame, 0, 255)
        write_mp4(folder / f"{i:03d}.mp4", video, fps=fps)
        paths.append(folder / f"{i:03d}.mp4")
    return paths


def pipeline_throughput(dataset: VideoClipDataset, *, batch: int, batches: int, workers: int) -> float:
    """Clips per second over ``batches`` training batches, timed from the loader's start (worker start-up and
    prefetching included, so queued batches are not counted for free)."""
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=EpochSampler(len(dataset), seed=0),
        collate_fn=collate_clips,
        num_workers=workers,
    )
    start, clips = time.perf_counter(), 0
    for _, loaded in zip(range(batches), loader, strict=False):
        clips += len(loaded["video"])
    return clips / (time.perf_counter() - start)


def header_reader_module() -> Any | None:
    """The replaced ``nlzoo/data/video_io.py`` from git history, as a module (None outside a git checkout)."""
    import subprocess
    import sys
    import types

    try:
        source = subprocess.run(
            ["git", "show", f"{HEADER_READER_COMMIT}:nlzoo/data/video_io.py"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("nlzoo.data.header_video_io")
    module.__package__ = "nlzoo.data"
    sys.modules[module.__name__] = module
    exec(compile(source, f"{HEADER_READER_COMMIT}:nlzoo/data/video_io.py", "exec"), module.__dict__)
    return module


def index_overhead(items: list[VideoItem], config: Any, *, batch: int, batches: int, rounds: int) -> dict[str, float]:
    """Clips/s of the training pipeline per reader, timed in interleaved rounds (best round each)."""
    old = header_reader_module()
    variants = {"exact_index_cached": "pyav", "exact_index_scanned_per_open": "pyav-scan-every-open"}
    if old is not None:
        variants = {"header_reader": "pyav-header", **variants}
    best = dict.fromkeys(variants, 0.0)
    for _ in range(rounds):
        for name, backend in variants.items():
            dataset = VideoClipDataset(items, config=config, num_classes=1, backend=backend)
            best[name] = max(best[name], pipeline_throughput(dataset, batch=batch, batches=batches, workers=0))
    return best


def write_long_video(path: Path, *, minutes: float, size: tuple[int, int], fps: int) -> Path:
    """A moving gradient, encoded frame by frame (x264 ultrafast, default GOP and B-frames)."""
    h, w = size
    base = (np.add.outer(np.arange(h), np.arange(w)) % 256).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"})
        stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
        for t in range(round(minutes * 60 * fps)):
            gray = np.roll(base, t % w, axis=1)
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, axis=2), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def open_times(path: Path, *, repeats: int) -> dict[str, float]:
    """Seconds to open ``path`` and read one frame from its middle, per way of indexing (median of repeats)."""
    old = header_reader_module()

    def timed(opener: Any, repeats: int = repeats) -> float:
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            with opener() as reader:
                reader.get_frames([reader.num_frames // 2])
            runs.append(time.perf_counter() - start)
        return sorted(runs)[len(runs) // 2]

    results = {}
    if old is not None:
        results["header_reader"] = timed(lambda: old.PyAVReader(str(path)))
    results["packet_scan"] = timed(lambda: PyAVReader(str(path), cache=IndexCache(on_disk=False)))
    results["decode_scan_exact"] = timed(
        lambda: PyAVReader(str(path), exact=True, cache=IndexCache(on_disk=False)), repeats=1
    )
    with tempfile.TemporaryDirectory() as folder:
        PyAVReader(str(path), exact=True, cache=IndexCache(folder=Path(folder))).close()
        results["exact_index_from_disk"] = timed(
            lambda: PyAVReader(str(path), exact=True, cache=IndexCache(folder=Path(folder)))
        )
    PyAVReader(str(path)).close()
    results["cached_index"] = timed(lambda: PyAVReader(str(path)))
    with PyAVReader(str(path)) as reader:
        results["frames"] = reader.num_frames
    return results


def register_reference_backends() -> None:
    old = header_reader_module()
    if old is not None:
        register_backend("pyav-header")(lambda path: old.PyAVReader(path))
    register_backend("pyav-scan-every-open")(lambda path: PyAVReader(path, cache=IndexCache(on_disk=False)))


def training_throughput(
    name: str, *, shape: tuple[int, ...], batch: int, iters: int, device: torch.device, amp: bool
) -> float:
    """Optimiser steps on random clips; clips per second after two warm-up steps."""
    model = load(name, pretrained=False, num_classes=400).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 400, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return batch * iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--models", nargs="*", default=["i3d_r18_nl", "i3d_r50_nl"], help="none: data only")
    parser.add_argument("--long-minutes", type=float, default=None, help="length of the long video (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the index comparison")
    parser.add_argument("--batches", type=int, default=None, help="batches per pipeline timing (default 24; --quick 6)")
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (default 8; --quick 2)")
    parser.add_argument("--iters", type=int, default=None, help="timed training steps (default 5; --quick 1)")
    parser.add_argument("--workers", type=int, default=None, help="loader processes (default: nlzoo's default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for training")
    args = parser.parse_args()

    batch = args.batch or (2 if args.quick else 8)
    iters = args.iters or (1 if args.quick else 5)
    workers = default_num_workers() if args.workers is None else args.workers
    config = load(args.models[0] if args.models else "i3d_r18_nl", pretrained=False).nlzoo_config.data_config
    if args.quick:  # 4 frames every 4th, 112 px crops from 128-144 px short sides
        config = config.replace(num_frames=4, sampling_rate=4, crop_size=(112, 112), train_scale=(128, 144))
        video_kw: dict[str, Any] = {"count": 4, "frames": 24, "size": (128, 170), "fps": 30}
    else:  # Kinetics clips pre-resized to a 256 short side (the common practice)
        video_kw = {"count": 8, "frames": 90, "size": (256, 340), "fps": 30}
    pipeline_batches = args.batches or (6 if args.quick else 24)

    results: dict[str, Any] = {
        "machine": {
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu",
        },
        "settings": {
            "clip": list(config.input_shape),
            "sampling_rate": config.sampling_rate,
            "train_scale": list(config.train_scale),
            "batch": batch,
            "workers": workers,
            "videos": {k: list(v) if isinstance(v, tuple) else v for k, v in video_kw.items()},
            "amp": args.amp,
        },
        "pipeline_clips_per_s": {},
        "training_clips_per_s": {},
    }
    long_minutes = args.long_minutes if args.long_minutes is not None else (0.5 if args.quick else 10)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_test_videos(Path(tmp), **video_kw)
        items = [VideoItem(str(p), (0,)) for p in paths] * 64
        INDEX_CACHE.clear()
        register_reference_backends()
        overhead = index_overhead(items, config, batch=batch, batches=pipeline_batches, rounds=args.rounds)
        results["index_clips_per_s"] = overhead
        if "header_reader" in overhead:
            results["index_cost"] = {k: 1 - v / overhead["header_reader"] for k, v in overhead.items()}
        long_video = write_long_video(Path(tmp) / "long.mp4", minutes=long_minutes, size=(256, 340), fps=30)
        results["open_long_video_s"] = {"minutes": long_minutes, **open_times(long_video, repeats=3)}
        for backend in ["pyav", "torchcodec"]:
            if backend == "torchcodec" and torchcodec_unavailable():
                continue
            dataset = VideoClipDataset(items, config=config, num_classes=1, backend=backend)
            rates = {"main_process": pipeline_throughput(dataset, batch=batch, batches=pipeline_batches, workers=0)}
            if workers > 0:
                rates[f"{workers}_workers"] = pipeline_throughput(
                    dataset, batch=batch, batches=pipeline_batches, workers=workers
                )
            results["pipeline_clips_per_s"][backend] = rates
    device = torch.device(args.device)
    for name in args.models:
        results["training_clips_per_s"][name] = training_throughput(
            name, shape=config.input_shape, batch=batch, iters=iters, device=device, amp=args.amp
        )
    best_pipeline = max(v for rates in results["pipeline_clips_per_s"].values() for v in rates.values())
    results["pipeline_over_training"] = {
        name: best_pipeline / rate for name, rate in results["training_clips_per_s"].items()
    }

    if args.json:
        print(json.dumps(results, indent=2))
        return
    s = results["settings"]
    print(f"clips {s['clip']} every {s['sampling_rate']} frames, batch {batch}, on {results['machine']['device']}")
    shown = ", ".join(f"{k}: {v:.1f}" for k, v in results["index_clips_per_s"].items())
    print(f"decode+augment clips/s by frame index (main process, best of {args.rounds} interleaved): {shown}")
    for name, cost in results.get("index_cost", {}).items():
        if name != "header_reader":
            print(f"  {name}: {100 * cost:+.1f}% slower than the header reader")
    times = results["open_long_video_s"]
    shown = ", ".join(f"{k}: {v:.3f} s" for k, v in times.items() if k not in ("minutes", "frames"))
    print(f"open a {times['minutes']:g}-minute video ({times['frames']} frames) and read 1 frame: {shown}")
    for backend, rates in results["pipeline_clips_per_s"].items():
        shown = ", ".join(f"{k}: {v:.1f}" for k, v in rates.items())
        print(f"decode+augment ({backend}) clips/s: {shown}")
    for name, rate in results["training_clips_per_s"].items():
        ratio = results["pipeline_over_training"][name]
        verdict = "data keeps up" if ratio >= 1 else "IO-bound: training waits for data"
        print(f"train {name}: {rate:.2f} clips/s; pipeline / training = {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
