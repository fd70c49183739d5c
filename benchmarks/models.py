"""The paper's video networks with and without non-local blocks: time, FLOPs and efficiency.

For each pair (i3d_r50 vs i3d_r50_nl, i3d_r18 vs i3d_r18_nl) at 8x224x224 this measures, in one run:

* inference at batch 1 and a training step (forward, backward, SGD) at a small batch: median times;
* FLOPs from ``torch.utils.flop_counter.FlopCounterMode`` through :func:`nlzoo.models.flops.count_flops`,
  which adds torch's own SDPA formulas for the CPU attention op the embedded Gaussian runs on (the counter
  only knows the CUDA kernels); the run checks that every non-local block's pairwise FLOPs were counted;
* achieved GFLOP/s against an fp32 matmul peak measured in the same run;
* the non-local blocks' share of inference time (timed with forward hooks) beside their share of FLOPs;
* variants: ``channels_last_3d`` memory format and ``torch.compile`` (``--compile``), as speed ratios
  against eager, with their outputs checked against eager's;
* inference paths of i3d_r50_nl, c2d_r50_nl (8x224x224 clips) and the image network resnet50_nl (224x224)
  at batch 1, timed in interleaved rounds: nlzoo's ``auto`` path
  (:func:`nlzoo.models.inference.prepare_for_inference`: channels-last, BatchNorm folded, the precision
  ``auto`` resolves to), the same in fp32, the plain fp32 module (eager) and the peer in fp32, randomly
  initialised, on the same input: pytorchvideo's ``i3d_r50`` / ``c2d_r50``, timm's ``resnet50``; each with
  achieved GFLOP/s
  as a share of the GEMM peak measured in the same rounds at that path's precision (``--compile`` adds
  the auto path under ``torch.compile`` with inductor freezing).

    python benchmarks/models.py [--quick] [--json] [--compile] [--device cuda] [--inference-only]
                                [--keep-freed-memory]

``--quick`` runs the R18 pair on 4x112x112 clips and the inference paths at 4x64x64 with few repeats (a
smoke test, not a measurement).
Ratios are what to compare across machines; absolute times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from timing import median_seconds, sync
from torch import nn

import nlzoo
from nlzoo.inference.allocator import keep_freed_memory
from nlzoo.layers import NonLocalBlock, nonlocal_blocks
from nlzoo.models import has_3d_convs, to_channels_last
from nlzoo.models.flops import count_flops
from nlzoo.models.inference import prepare_for_inference
from nlzoo.precision import autocast_dtype, cpu_model, inference_precision, resolve_precision

PAIRS = {"r50": ("i3d_r50", "i3d_r50_nl"), "r18": ("i3d_r18", "i3d_r18_nl")}
# nlzoo model -> (library, the library's network without non-local blocks)
PEERS = {
    "i3d_r50_nl": ("pytorchvideo", "i3d_r50"),
    "c2d_r50_nl": ("pytorchvideo", "c2d_r50"),
    "resnet50_nl": ("timm", "resnet50"),
}


# ---- timing ----------------------------------------------------------------------------------------
def gemm_functions(device: torch.device, *, size: int, dtype: torch.dtype) -> list[Callable[[], object]]:
    """A ``size``^3 product through two back ends: ``torch.mm`` (MKL/cuBLAS) and a 1x1 convolution
    (oneDNN/cuDNN). On AMD CPUs MKL's sgemm trails oneDNN, so ``mm`` alone would understate the peak and make
    the convolution-heavy models look faster than it."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    x = torch.randn(1, size, size // 32, 32, device=device, dtype=dtype)  # size positions (a multiple of 32)
    w = torch.randn(size, size, 1, 1, device=device, dtype=dtype)

    def conv() -> torch.Tensor:
        with torch.inference_mode():
            return F.conv2d(x, w)

    return [lambda: a @ b, conv]


def matmul_peak_gflops(device: torch.device, *, size: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """The best GEMM rate (GFLOP/s) of :func:`gemm_functions` at ``dtype``."""
    best = min(
        median_seconds(fn, repeats=repeats, warmup=2, device=device)
        for fn in gemm_functions(device, size=size, dtype=dtype)
    )
    return 2 * size**3 / best / 1e9


class _BlockTimer:
    """Forward hooks summing the wall time spent inside the non-local blocks."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.device, self.seconds, self._start = device, 0.0, 0.0
        self.handles = []
        for _, block in nonlocal_blocks(model):
            self.handles.append(block.register_forward_pre_hook(self._enter))
            self.handles.append(block.register_forward_hook(self._leave))

    def _enter(self, module: nn.Module, args: Any) -> None:
        sync(self.device)
        self._start = time.perf_counter()

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        sync(self.device)
        self.seconds += time.perf_counter() - self._start

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def nonlocal_time_share(model: nn.Module, x: torch.Tensor, *, repeats: int, device: torch.device) -> float:
    """Median over runs of (time inside NL blocks) / (forward time), hooks synchronising on CUDA."""
    timer = _BlockTimer(model, device)
    shares = []
    try:
        with torch.inference_mode():
            model(x)
            for _ in range(repeats):
                timer.seconds = 0.0
                sync(device)
                start = time.perf_counter()
                model(x)
                sync(device)
                shares.append(timer.seconds / (time.perf_counter() - start))
    finally:
        timer.remove()
    return statistics.median(shares)


# ---- one model -------------------------------------------------------------------------------------
@dataclass
class ModelResult:
    name: str
    params_m: float
    infer_gflops: float
    train_gflops: float
    nl_flop_share: float
    pairwise_counted: bool
    infer_ms: float
    train_ms: float
    infer_gflops_per_s: float
    train_gflops_per_s: float
    infer_peak_fraction: float
    train_peak_fraction: float
    nl_time_share: float
    variants: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> speedup, max |diff|


def measure_model(name: str, args: argparse.Namespace, device: torch.device, peak: float) -> ModelResult:
    torch.manual_seed(0)
    model = nlzoo.load(name, pretrained=False, num_classes=400).to(device).eval()
    for _, block in nonlocal_blocks(model):  # a trained block, not the identity init
        assert isinstance(block, NonLocalBlock)
        nn.init.normal_(block.norm.weight, std=0.1)
    frames, size = args.frames, args.size
    x1 = torch.randn(1, 3, frames, size, size, device=device)
    xb = torch.randn(args.train_batch, 3, frames, size, size, device=device)
    yb = torch.randint(0, 400, (args.train_batch,), device=device)

    def infer(m: nn.Module = model, x: torch.Tensor = x1) -> torch.Tensor:
        with torch.inference_mode():
            return m(x)

    train_model = nlzoo.load(name, pretrained=False, num_classes=400).to(device).train()

    def make_train_step(m: nn.Module) -> Callable[[], None]:
        optimizer = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(m(xb), yb).backward()
            optimizer.step()

        return step

    train_step = make_train_step(train_model)

    fwd = count_flops(model, lambda: model(x1))
    trn = count_flops(train_model, lambda: nn.functional.cross_entropy(train_model(xb), yb).backward())
    infer_s = median_seconds(infer, repeats=args.repeats, warmup=1, device=device)
    train_s = median_seconds(train_step, repeats=args.train_repeats, warmup=1, device=device)
    result = ModelResult(
        name=name,
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        infer_gflops=fwd.total / 1e9,
        train_gflops=trn.total / 1e9,
        nl_flop_share=fwd.nonlocal_blocks / fwd.total,
        pairwise_counted=fwd.pairwise_counted and trn.pairwise_counted,
        infer_ms=infer_s * 1e3,
        train_ms=train_s * 1e3,
        infer_gflops_per_s=fwd.total / infer_s / 1e9,
        train_gflops_per_s=trn.total / train_s / 1e9,
        infer_peak_fraction=fwd.total / infer_s / 1e9 / peak,
        train_peak_fraction=trn.total / train_s / 1e9 / peak,
        nl_time_share=nonlocal_time_share(model, x1, repeats=args.repeats, device=device)
        if fwd.nonlocal_blocks
        else 0.0,
    )
    with torch.inference_mode():
        reference = model(x1)
    for variant, (vmodel, vx) in _variants(model, x1, args).items():
        seconds = median_seconds(lambda m=vmodel, x=vx: infer(m, x), repeats=args.repeats, warmup=2, device=device)
        with torch.inference_mode():
            diff = (vmodel(vx).float() - reference).abs().max().item()
        result.variants[variant] = {"speedup": infer_s / seconds, "max_abs_diff": diff}
    # What VideoClassifier trains with by default: the same weights, channels-last.
    cl_train = to_channels_last(copy.deepcopy(train_model))
    cl_seconds = median_seconds(make_train_step(cl_train), repeats=args.train_repeats, warmup=1, device=device)
    result.variants["channels_last_3d"]["train_speedup"] = train_s / cl_seconds
    return result


def _variants(model: nn.Module, x: torch.Tensor, args: argparse.Namespace) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    out: dict[str, tuple[nn.Module, torch.Tensor]] = {}
    # What the inference commands run: channels-last weights, the input as decoded.
    out["channels_last_3d"] = (to_channels_last(copy.deepcopy(model)), x)
    if args.compile:
        out["torch.compile"] = (torch.compile(model), x)
    return out


# ---- inference paths: nlzoo auto / fp32 / eager vs pytorchvideo --------------------------------------
@dataclass
class PathResult:
    path: str
    precision: str  # what the path ran at (auto resolved)
    ms: float
    gflops_per_s: float
    peak_fraction: float  # of the same rounds' GEMM peak at that precision
    max_rel_diff: float  # max |logit - fp32 eager logit| / max |fp32 eager logit| (nan for the peer)
    top1_agrees: bool | None  # same argmax as fp32 eager (None for the peer)


def _trained_looking(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and active non-local blocks, so folding and bf16 errors are not hidden
    behind identity BNs and zero-initialised residual branches."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.2, 0.6)
                m.bias.normal_(0, 0.05)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _peer(library: str, name: str, frames: int, size: int) -> nn.Module | None:
    """The peer's fp32 network, randomly initialised (pytorchvideo's with its head pool sized for the clip)."""
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False, num_classes=400)
    try:
        from pytorchvideo.models.hub import resnet as ptv_resnet
    except ImportError:
        return None
    pool = (frames // 2, size // 32, size // 32)
    return getattr(ptv_resnet, name)(pretrained=False, model_num_class=400, head_pool_kernel_size=pool)


def measure_inference_paths(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    torch.manual_seed(0)
    eager = _trained_looking(nlzoo.load(name, pretrained=False, num_classes=400)).to(device).eval()
    clip = (args.frames,) if has_3d_convs(eager) else ()
    x = torch.randn(1, 3, *clip, args.size, args.size, device=device)
    prepared = prepare_for_inference(copy.deepcopy(eager), device=device, example=x)
    paths: dict[str, tuple[nn.Module, str]] = {}
    library, peer_name = PEERS[name]
    peer = _peer(library, peer_name, args.frames, args.size)
    if peer is not None:
        paths[f"{library} {peer_name} fp32"] = (peer.to(device).eval(), "fp32")
    paths["nlzoo fp32 eager"] = (eager, "fp32")
    paths["nlzoo fp32 prepared"] = (prepared, "fp32")
    paths["nlzoo auto"] = (prepared, "auto")
    if args.compile:
        paths["nlzoo auto + compile"] = (torch.compile(copy.deepcopy(prepared), options={"freezing": True}), "auto")

    def run(model: nn.Module, precision: str) -> torch.Tensor:
        with torch.inference_mode(), inference_precision(precision, device):
            return model(x).float()

    dtypes = {resolve_precision(p, device) for _, p in paths.values()}
    gemms = {d: gemm_functions(device, size=args.matmul_size, dtype=autocast_dtype(d) or torch.float32) for d in dtypes}
    flops = {path: count_flops(m, lambda m=m: m(x)).total for path, (m, _) in paths.items() if "compile" not in path}
    times: dict[str, list[float]] = {path: [] for path in paths}
    gemm_best = dict.fromkeys(dtypes, float("inf"))
    for round_ in range(args.repeats + 1):  # round 0 warms up (and compiles)
        for path, (model, precision) in paths.items():
            sync(device)
            start = time.perf_counter()
            run(model, precision)
            sync(device)
            if round_:
                times[path].append(time.perf_counter() - start)
        for dtype, fns in gemms.items():
            for fn in fns:
                gemm_best[dtype] = min(gemm_best[dtype], median_seconds(fn, repeats=1, warmup=1, device=device))
    peaks = {d: 2 * args.matmul_size**3 / s / 1e9 for d, s in gemm_best.items()}
    reference = run(eager, "fp32")
    results = []
    for path, (model, precision) in paths.items():
        seconds = statistics.median(times[path])
        resolved = resolve_precision(precision, device)
        count = flops.get(path, flops["nlzoo fp32 prepared"])
        is_peer = not path.startswith("nlzoo")
        out = None if is_peer else run(model, precision)
        results.append(
            PathResult(
                path=path,
                precision=resolved,
                ms=seconds * 1e3,
                gflops_per_s=count / seconds / 1e9,
                peak_fraction=count / seconds / 1e9 / peaks[resolved],
                max_rel_diff=float("nan")
                if out is None
                else ((out - reference).abs().max() / reference.abs().max()).item(),
                top1_agrees=None if out is None else bool((out.argmax(-1) == reference.argmax(-1)).all()),
            )
        )
    size = "x".join(map(str, x.shape[2:]))
    return {"model": name, "input": size, "gemm_peak_gflops": peaks, "paths": [asdict(r) for r in results]}


def _print_inference(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        peaks = ", ".join(f"{d} {g:.0f}" for d, g in row["gemm_peak_gflops"].items())
        print(f"\n{row['model']} inference, batch 1, {row['input']} (GEMM peak in the same rounds, GFLOP/s: {peaks})")
        print(
            f"{'path':<28}{'precision':>10}{'ms':>9}{'GFLOP/s':>9}{'%peak':>7}{'vs eager':>9}"
            f"{'vs peer':>9}{'rel diff':>10}{'top-1':>7}"
        )
        by_path = {p["path"]: p for p in row["paths"]}
        eager_ms = by_path["nlzoo fp32 eager"]["ms"]
        peer_ms = next((p["ms"] for p in row["paths"] if not p["path"].startswith("nlzoo")), float("nan"))
        for p in row["paths"]:
            top1 = "" if p["top1_agrees"] is None else ("same" if p["top1_agrees"] else "DIFF")
            print(
                f"{p['path']:<28}{p['precision']:>10}{p['ms']:>9.0f}{p['gflops_per_s']:>9.0f}"
                f"{100 * p['peak_fraction']:>6.0f}%{eager_ms / p['ms']:>8.2f}x{peer_ms / p['ms']:>8.2f}x"
                f"{p['max_rel_diff']:>10.1e}{top1:>7}"
            )


# ---- report ----------------------------------------------------------------------------------------
def _print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"torch {env['torch']} on {env['device']} ({env['threads']} threads); clip {env['clip']}, "
        f"train batch {env['train_batch']}; fp32 matmul peak {env['matmul_peak_gflops']:.0f} GFLOP/s "
        f"({env['matmul_size']}^3); inference paths at {env['inference_clip']} (clips)"
        + ("; freed memory kept (the inference commands' allocator setting)" if env["keep_freed_memory"] else "")
    )
    if not report["models"]:
        _print_inference(report["inference"])
        return
    header = (
        f"{'model':<12}{'params M':>9}{'GFLOP inf':>10}{'GFLOP trn':>10}{'inf ms':>9}{'trn ms':>9}"
        f"{'inf GF/s':>9}{'%peak':>7}{'trn GF/s':>9}{'%peak':>7}{'NL flop%':>9}{'NL time%':>9}"
    )
    print(header)
    for r in report["models"]:
        print(
            f"{r['name']:<12}{r['params_m']:>9.1f}{r['infer_gflops']:>10.1f}{r['train_gflops']:>10.1f}"
            f"{r['infer_ms']:>9.1f}{r['train_ms']:>9.1f}{r['infer_gflops_per_s']:>9.1f}"
            f"{100 * r['infer_peak_fraction']:>6.0f}%{r['train_gflops_per_s']:>9.1f}"
            f"{100 * r['train_peak_fraction']:>6.0f}%{100 * r['nl_flop_share']:>8.1f}%{100 * r['nl_time_share']:>8.1f}%"
        )
    for r in report["models"]:
        for variant, v in r["variants"].items():
            train = f", {v['train_speedup']:.2f}x train step" if "train_speedup" in v else ""
            print(
                f"  {r['name']} {variant}: {v['speedup']:.2f}x eager inference (max |diff| {v['max_abs_diff']:.1e})"
                f"{train}"
            )
    for p in report["pairs"]:
        print(
            f"NL overhead {p['nonlocal']} / {p['baseline']}: inference time {p['infer_time_ratio']:.3f}x, "
            f"train time {p['train_time_ratio']:.3f}x, FLOPs {p['flop_ratio']:.3f}x; "
            f"NL time share / FLOP share {p['nl_time_over_flop_share']:.2f} (<= 1: as efficient as the convs)"
        )
    if not all(r["pairwise_counted"] for r in report["models"]):
        print("WARNING: some non-local pairwise FLOPs were not counted (an op without a formula)")
    _print_inference(report["inference"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="R18 pair, 4x112x112, few repeats (smoke test)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pairs", default=None, help="comma-separated: r50,r18 (default: both; --quick: r18)")
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--inference-only", action="store_true", help="only the inference paths (nlzoo vs peer)")
    parser.add_argument("--inference-models", default=",".join(PEERS), help="comma-separated (default: %(default)s)")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="the allocator setting nlzoo's inference commands use (nlzoo.inference.allocator), for every path",
    )
    args = parser.parse_args(argv)
    if args.keep_freed_memory and not keep_freed_memory():
        parser.error("--keep-freed-memory needs glibc (Linux)")
    quick = args.quick
    args.frames, args.size = (4, 112) if quick else (8, 224)
    args.repeats, args.train_repeats = (3, 2) if quick else (10, 5)
    pairs = [] if args.inference_only else (args.pairs or ("r18" if quick else "r50,r18")).split(",")
    device = torch.device(args.device)
    matmul_size = 1024 if quick else 2048
    peak = matmul_peak_gflops(device, size=matmul_size, repeats=3 if quick else 10)

    models: dict[str, ModelResult] = {}
    for pair in pairs:
        for name in PAIRS[pair]:
            models[name] = measure_model(name, args, device, peak)
            print(f"measured {name}", file=sys.stderr)
    inference = []
    infer_args = copy.copy(args)
    infer_args.frames, infer_args.size = (4, 64) if quick else (8, 224)
    infer_args.repeats, infer_args.matmul_size = (2 if quick else 7), matmul_size
    for name in filter(None, args.inference_models.split(",")):
        inference.append(measure_inference_paths(name, infer_args, device))
        print(f"measured the inference paths of {name}", file=sys.stderr)
    report: dict[str, Any] = {
        "environment": {
            "torch": torch.__version__,
            "device": str(device) if device.type == "cuda" else f"cpu ({cpu_model()}, {platform.machine()})",
            "inference_clip": f"{infer_args.frames}x{infer_args.size}x{infer_args.size}",
            "threads": torch.get_num_threads(),
            "keep_freed_memory": args.keep_freed_memory,
            "clip": f"{args.frames}x{args.size}x{args.size}",
            "train_batch": args.train_batch,
            "matmul_peak_gflops": peak,
            "matmul_size": matmul_size,
            "quick": quick,
        },
        "models": [asdict(m) for m in models.values()],
        "pairs": [],
        "inference": inference,
    }
    for pair in pairs:
        base, nl = (models[n] for n in PAIRS[pair])
        report["pairs"].append(
            {
                "baseline": base.name,
                "nonlocal": nl.name,
                "infer_time_ratio": nl.infer_ms / base.infer_ms,
                "train_time_ratio": nl.train_ms / base.train_ms,
                "flop_ratio": nl.infer_gflops / base.infer_gflops,
                "nl_time_over_flop_share": nl.nl_time_share / nl.nl_flop_share,
            }
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
