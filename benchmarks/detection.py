"""Mask R-CNN R50-FPN with vs without the paper's non-local block: inference time, peak memory, FLOPs share.

Both models are nlzoo's (torchvision's network; the ``_nl`` one has one block before the last res4 block) with
the same random weights wherever they share keys, evaluated on the same image at the paper's 800-pixel short
side. Times: median of interleaved runs in one process (a drifting, shared machine hurts both alike). Peak
memory: one fresh subprocess per model (max RSS growth over the forward on CPU, max allocated on CUDA).
FLOPs: counted on the meta device (``nlzoo models``), the block's share of the whole forward.

    python benchmarks/detection.py [--quick] [--device cuda] [--size 800] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from timing import peak_rss, reset_peak_rss, sync

import nlzoo
from nlzoo.zoo.complexity import measure_complexity

MODELS = ("maskrcnn_r50_fpn", "maskrcnn_r50_fpn_nl")


def build(name: str, size: int, device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = nlzoo.load(name, pretrained=False, min_size=size, max_size=round(size * 1333 / 800))
    return model.to(device).eval()


def image(size: int, device: str) -> list[torch.Tensor]:
    """A 4:3 image that the detector keeps at ``size`` x 4/3 ``size`` (a 640x480 COCO image at 800 px)."""
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(3, size, size * 4 // 3, generator=generator).to(device)]


def peak_memory(name: str, size: int, device: str) -> int:
    """Bytes the forward pass adds at its peak (run in this process: call it in a fresh one)."""
    model, x = build(name, size, device), image(size, device)
    with torch.no_grad():
        if device.startswith("cuda"):
            model(x)  # warm-up: lazily allocated workspaces
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            model(x)
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - base
        base = reset_peak_rss()
        model(x)
        return max(peak_rss() - base, 0)


def isolated_peak(name: str, args: argparse.Namespace) -> int:
    cmd = [sys.executable, __file__, "--memory-of", name, "--size", str(args.size), "--device", args.device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
    return int(out.stdout.strip().splitlines()[-1])


def interleaved_times(args: argparse.Namespace) -> dict[str, float]:
    models = {name: build(name, args.size, args.device) for name in MODELS}
    x = image(args.size, args.device)
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    with torch.no_grad():
        for model in models.values():
            model(x)  # warm-up
        for _ in range(args.repeats):
            for name, model in models.items():
                sync(args.device)
                start = time.perf_counter()
                model(x)
                sync(args.device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 128-pixel image, 1 repeat")
    parser.add_argument("--size", type=int, default=800, help="short side in pixels (default 800, the paper's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        print(peak_memory(args.memory_of, args.size, args.device))
        return
    if args.quick:
        args.size, args.repeats = 128, 1
    torch.set_num_threads(os.cpu_count() or 1)
    seconds = interleaved_times(args)
    memory = {name: isolated_peak(name, args) for name in MODELS}
    shape = (3, args.size, -(-args.size * 4 // 3 // 32) * 32)  # as the transform pads: to a multiple of 32
    size = {name: measure_complexity(name, input_shape=shape) for name in MODELS}
    base, nl = MODELS
    report = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)",
        "input": list(shape),
        "seconds": seconds,
        "peak_bytes": memory,
        "gflops": {n: c.flops / 1e9 for n, c in size.items()},
        "params_m": {n: c.params / 1e6 for n, c in size.items()},
        "time_ratio": seconds[nl] / seconds[base],
        "memory_ratio": memory[nl] / max(memory[base], 1),
        "nl_flop_share": size[nl].nonlocal_flops / size[nl].flops,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"Mask R-CNN R50-FPN, input {shape[1]}x{shape[2]}, {report['device']}, {args.repeats} interleaved repeats")
    print(f"{'model':24} {'time (s)':>9} {'peak MB':>9} {'GFLOPs':>8} {'params M':>9}")
    for name in MODELS:
        print(
            f"{name:24} {seconds[name]:9.3f} {memory[name] / 2**20:9.0f} {report['gflops'][name]:8.1f} "
            f"{report['params_m'][name]:9.2f}"
        )
    print(
        f"NL overhead maskrcnn_r50_fpn_nl / maskrcnn_r50_fpn: time x{report['time_ratio']:.3f}, "
        f"peak memory x{report['memory_ratio']:.3f}, FLOPs share of the block {100 * report['nl_flop_share']:.2f}%"
    )


if __name__ == "__main__":
    main()
