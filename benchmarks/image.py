"""Image ResNets with and without non-local blocks: time and peak memory, reported as the NL overhead ratio.

For each pair (``resnet50`` vs ``resnet50_nl``: 3 blocks after layer3.1/3.3/3.5) at 224x224 this measures:

* inference at batch 1 (``torch.inference_mode``) and a training step (forward, cross-entropy, backward,
  SGD with momentum) at a small batch: median wall time over repeats after warm-up;
* the peak memory of each, measured in its own subprocess so that it belongs to that run alone: on CUDA the
  allocator's peak minus what was allocated before the first step (weights, inputs), on CPU the growth of the
  process's max RSS over the run (activations, gradients, optimiser state);

and prints the ratios NL / baseline (time, memory, parameters). Blocks get a non-zero norm gamma, as after
training: a fresh block (gamma 0) computes the same work, but this keeps its output honest.

    python benchmarks/image.py [--quick] [--json] [--device cuda] [--pairs r50,r18] [--train-batch 8]

``--quick`` runs the ResNet-18 pair at 112x112 with few repeats (a smoke test, not a measurement). Ratios are
what to compare across machines; absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from typing import Any

import torch
from timing import median_seconds
from torch import nn

PAIRS = {"r50": ("resnet50", "resnet50_nl"), "r18": ("resnet18", "resnet18_nl")}
MODES = ("infer", "train")


# ---- one measurement (runs in a subprocess) ------------------------------------------------------------
def measure(name: str, mode: str, *, size: int, batch: int, repeats: int, device: str) -> dict[str, Any]:
    """Time and peak memory of ``mode`` ("infer" at batch 1, "train" at ``batch``) for registry model ``name``."""
    import nlzoo
    from nlzoo.layers import nonlocal_blocks

    dev = torch.device(device)
    torch.manual_seed(0)
    model = nlzoo.load(name, pretrained=False, num_classes=1000).to(dev)
    for _, block in nonlocal_blocks(model):
        nn.init.normal_(block.norm.weight, std=0.1)
    params = sum(p.numel() for p in model.parameters())
    if mode == "infer":
        model.eval()
        x = torch.randn(1, 3, size, size, device=dev)

        def step() -> None:
            with torch.inference_mode():
                model(x)

    else:
        model.train()
        x = torch.randn(batch, 3, size, size, device=dev)
        y = torch.randint(0, 1000, (batch,), device=dev)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    seconds = median_seconds(step, repeats=repeats, warmup=2, device=dev)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"model": name, "mode": mode, "ms": seconds * 1e3, "peak_mb": peak / 2**20, "params_m": params / 1e6}


def run_isolated(name: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = {"name": name, "mode": mode, "size": args.size, "batch": args.train_batch, "repeats": args.repeats}
    cmd = [sys.executable, __file__, "--measure", json.dumps({**spec, "device": args.device})]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"measuring {name} ({mode}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- report ----------------------------------------------------------------------------------------------
def _print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"torch {env['torch']} on {env['device']} ({env['threads']} threads); {env['size']}x{env['size']} images, "
        f"inference batch 1, train batch {env['train_batch']}; peak memory = {env['memory']}"
    )
    print(f"{'model':<14}{'params M':>9}{'infer ms':>10}{'infer MB':>10}{'train ms':>10}{'train MB':>10}")
    for r in report["models"].values():
        print(
            f"{r['model']:<14}{r['params_m']:>9.2f}{r['infer']['ms']:>10.1f}{r['infer']['peak_mb']:>10.1f}"
            f"{r['train']['ms']:>10.1f}{r['train']['peak_mb']:>10.1f}"
        )
    for p in report["pairs"]:
        print(
            f"NL overhead {p['nonlocal']} / {p['baseline']}: inference time {p['infer_time_ratio']:.3f}x, "
            f"memory {p['infer_memory_ratio']:.3f}x; train step time {p['train_time_ratio']:.3f}x, "
            f"memory {p['train_memory_ratio']:.3f}x; parameters {p['params_ratio']:.3f}x"
        )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-18 pair, 112x112, few repeats (smoke test)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pairs", default=None, help="comma-separated: r50,r18 (default: r50; --quick: r18)")
    parser.add_argument("--train-batch", type=int, default=None, help="train-step batch (default 8; --quick 4)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one isolated measurement
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(args.measure)
        print(json.dumps(measure(spec.pop("name"), spec.pop("mode"), **spec)))
        return 0
    args.size, args.repeats = (112, 3) if args.quick else (224, 10)
    args.train_batch = args.train_batch or (4 if args.quick else 8)
    pairs = (args.pairs or ("r18" if args.quick else "r50")).split(",")
    unknown = [p for p in pairs if p not in PAIRS]
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {sorted(PAIRS)}")

    models: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        for name in PAIRS[pair]:
            results = {mode: run_isolated(name, mode, args) for mode in MODES}
            models[name] = {"model": name, "params_m": results["infer"]["params_m"], **results}
            print(f"measured {name}", file=sys.stderr)
    cuda = args.device.startswith("cuda")
    report: dict[str, Any] = {
        "environment": {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})",
            "threads": torch.get_num_threads(),
            "size": args.size,
            "train_batch": args.train_batch,
            "repeats": args.repeats,
            "memory": "CUDA allocator peak above weights and inputs" if cuda else "growth of max RSS over the run",
            "quick": args.quick,
        },
        "models": models,
        "pairs": [],
    }
    for pair in pairs:
        base, nl = (models[n] for n in PAIRS[pair])
        report["pairs"].append(
            {
                "baseline": base["model"],
                "nonlocal": nl["model"],
                "infer_time_ratio": _ratio(nl["infer"]["ms"], base["infer"]["ms"]),
                "infer_memory_ratio": _ratio(nl["infer"]["peak_mb"], base["infer"]["peak_mb"]),
                "train_time_ratio": _ratio(nl["train"]["ms"], base["train"]["ms"]),
                "train_memory_ratio": _ratio(nl["train"]["peak_mb"], base["train"]["peak_mb"]),
                "params_ratio": _ratio(nl["params_m"], base["params_m"]),
            }
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
