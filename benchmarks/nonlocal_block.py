"""Non-local block: nlzoo's exact fast paths vs the common materialising implementations.

For each instantiation at the paper's shapes (res3 / res4 of an 8x8 R50 video model, with and without the
(1,2,2) subsampling, and a 2D 56x56 map) this measures forward+backward time (median) and peak memory of
nlzoo's block against a reference block built from the SAME 1x1 convs and norm, whose pairwise step is
written the way mmcv / pytorchvideo / PySlowFast / timm write it (bmm + softmax over a materialised
affinity; repeat + cat for concatenation). Peak memory (max RSS growth on CPU, max allocated on CUDA)
is measured in a fresh subprocess per (case, implementation), so it belongs to that run alone; times come from
one subprocess per case that interleaves the two implementations' steps, so a drifting machine hurts both alike.

    python benchmarks/nonlocal_block.py [--quick] [--json] [--only gaussian,...] [--repeats N]
                                        [--device cuda --dtype bfloat16] [--flush-denormal]

``--flush-denormal`` runs every measurement with ``torch.set_flush_denormal(True)`` (subnormal floats read and
written as 0 on x86 CPUs). The plain Gaussian over pooled keys has fp32-subnormal softmax weights (11.6% of
them at res3 with random inputs), and Intel cores take slow microcode assists on subnormal operands where AMD
Zen 4 does not. nlzoo's direct path masks those weights to exact zeros itself; the reference does not, so the
flag shows what subnormals cost the reference on the machine at hand (on an Intel Xeon: ~10x).

Prints ratios reference / nlzoo (higher is better for nlzoo) beside the ideal ratio from FLOP counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from timing import peak_rss, reset_peak_rss, sync

from nlzoo.layers import NonLocalBlock
from nlzoo.layers.pairwise import PairwiseFunction

INSTANTIATIONS = ("embedded_gaussian", "gaussian", "dot_product", "concatenation")
MAX_REFERENCE_BYTES = 6e9  # skip reference runs whose single affinity-sized tensor alone exceeds this


@dataclass(frozen=True)
class Case:
    name: str
    batch: int
    channels: int
    positions: tuple[int, ...]  # (T, H, W) or (H, W)
    subsample: bool

    @property
    def dims(self) -> int:
        return len(self.positions)

    def sizes(self, instantiation: str) -> dict[str, int]:
        """N queries, M keys, E embed dim, D value dim, C channels, Mc positions the phi/g convs see."""
        n = 1
        for s in self.positions:
            n *= s
        m = n // 4 if self.subsample else n
        d = self.channels // 2
        e = d if instantiation != "gaussian" else self.channels
        return {"N": n, "M": m, "E": e, "D": d, "C": self.channels}


CASES = (
    Case("res3 8x8 R50 (C=512, 4x28x28)", 2, 512, (4, 28, 28), False),
    Case("res3 8x8 R50 (C=512, 4x28x28)", 2, 512, (4, 28, 28), True),
    Case("res4 8x8 R50 (C=1024, 4x14x14)", 2, 1024, (4, 14, 14), False),
    Case("res4 8x8 R50 (C=1024, 4x14x14)", 2, 1024, (4, 14, 14), True),
    Case("2D map (C=256, 56x56)", 2, 256, (56, 56), False),
    Case("2D map (C=256, 56x56)", 2, 256, (56, 56), True),
)
QUICK_CASES = (
    Case("quick 3D (C=64, 2x14x14)", 2, 64, (2, 14, 14), False),
    Case("quick 3D (C=64, 2x14x14)", 2, 64, (2, 14, 14), True),
)


# ---- FLOP model (multiply-adds) -------------------------------------------------------------------
def macs(case: Case, instantiation: str, impl: str) -> float:
    s = case.sizes(instantiation)
    n, m, e, d, c = s["N"], s["M"], s["E"], s["D"], s["C"]
    convs = n * c * d * 2 + 2 * m * c * d  # theta + W_z on N; phi + g on the (pooled) M
    if instantiation == "gaussian":
        convs -= n * c * d + m * c * d  # no theta / phi
    direct = n * m * (e + d)
    if impl == "reference" or instantiation in ("embedded_gaussian", "gaussian"):
        pairwise = direct + (2 * e * n * m if instantiation == "concatenation" else 0)
    elif instantiation == "dot_product":
        pairwise = min(direct, (n + m) * e * d)
    else:  # concatenation by sorting: projections, prefix sums, gathers
        pairwise = (n + m) * e + 3 * m * d + 2 * n * d
    return float(convs + pairwise)


# ---- The reference pairwise steps, as the common implementations write them --------------------------
class ReferencePairwise(PairwiseFunction):
    """Materialises the (B, N, M) affinity (and, for concatenation, the (B, 2E, N, M) concat)."""

    def __init__(self, fast: PairwiseFunction, instantiation: str) -> None:
        super().__init__(fast.embed_dim)
        self.fast, self.kind = fast, instantiation

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        m = k.shape[1]
        if self.kind in ("embedded_gaussian", "gaussian"):
            attn = torch.bmm(q, k.transpose(1, 2)) * self.fast.softmax_scale
            return torch.bmm(F.softmax(attn, dim=-1), v)
        if self.kind == "dot_product":
            return torch.bmm(torch.bmm(q, k.transpose(1, 2)) / m, v)
        # concatenation (mmcv / AlexHex7): repeat theta over keys and phi over queries, cat, 1x1 conv, ReLU.
        n, e = q.shape[1], q.shape[2]
        qq = q.transpose(1, 2).unsqueeze(3).repeat(1, 1, 1, m)
        kk = k.transpose(1, 2).unsqueeze(2).repeat(1, 1, n, 1)
        cat = torch.cat([qq, kk], dim=1)  # (B, 2E, N, M)
        f = F.relu(F.conv2d(cat, self.fast.weight.view(1, 2 * e, 1, 1))).squeeze(1)
        return torch.bmm(f / m, v)


def build(case: Case, instantiation: str, impl: str, device: str, dtype: torch.dtype) -> NonLocalBlock:
    torch.manual_seed(0)
    block = NonLocalBlock(case.channels, dims=case.dims, instantiation=instantiation, subsample=case.subsample)
    torch.nn.init.normal_(block.norm.weight)
    if impl == "reference":
        block.pairwise = ReferencePairwise(block.pairwise, instantiation)
    return block.to(device=device, dtype=dtype)


def reference_bytes(case: Case, instantiation: str, dtype: torch.dtype) -> float:
    s = case.sizes(instantiation)
    per = torch.finfo(dtype).bits // 8
    width = 2 * s["E"] if instantiation == "concatenation" else 1
    return case.batch * width * s["N"] * s["M"] * per


# ---- Measurements (each runs in its own subprocess) --------------------------------------------------
def _setup(case: Case, instantiation: str, impl: str, device: str, dtype: torch.dtype):
    """A block, its input, and one forward+backward step; libraries warmed up on a small input first."""
    block = build(case, instantiation, impl, device, dtype)
    x = torch.randn(case.batch, case.channels, *case.positions, device=device, dtype=dtype, requires_grad=True)
    small = [max(2, s // 4) for s in case.positions]
    block(torch.randn(case.batch, case.channels, *small, device=device, dtype=dtype)).sum().backward()

    def step() -> None:
        block.zero_grad(set_to_none=True)
        x.grad = None
        block(x).float().square().mean().backward()

    return step


def measure_memory(case: Case, instantiation: str, impl: str, device: str, dtype: torch.dtype) -> dict:
    """Peak memory of one step: max RSS growth on CPU (one process per measurement), max allocated on CUDA."""
    step = _setup(case, instantiation, impl, device, dtype)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        sync(device)
        return {"peak_bytes": torch.cuda.max_memory_allocated() - base}
    base = reset_peak_rss()
    step()
    return {"peak_bytes": max(peak_rss() - base, 0)}


def measure_time(
    case: Case, instantiation: str, impls: list[str], device: str, dtype: torch.dtype, repeats: int
) -> dict:
    """Median step time of each implementation, their steps interleaved so that a machine whose speed drifts
    (shared cores, frequency changes) affects both sides alike."""
    steps = {impl: _setup(case, instantiation, impl, device, dtype) for impl in impls}
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[impl].append(time.perf_counter() - start)
    return {impl: statistics.median(values) for impl, values in times.items()}


def run_isolated(args: argparse.Namespace, mode: str, spec: str) -> dict:
    cmd = [sys.executable, __file__, mode, spec, "--device", args.device, "--dtype", args.dtype]
    cmd += ["--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    cmd += ["--flush-denormal"] if args.flush_denormal else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


@dataclass
class Row:
    case: str
    subsample: bool
    instantiation: str
    nlzoo_ms: float | None
    reference_ms: float | None
    speedup: float | None
    ideal_speedup: float
    nlzoo_peak_mb: float | None
    reference_peak_mb: float | None
    memory_ratio: float | None
    note: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated instantiations")
    parser.add_argument("--flush-denormal", action="store_true", help="treat subnormal floats as 0 (CPU)")
    parser.add_argument("--_memory", default="", help=argparse.SUPPRESS)
    parser.add_argument("--_time", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    if args.flush_denormal and not torch.set_flush_denormal(True):
        parser.error("--flush-denormal: this CPU cannot flush subnormal floats (x86 with SSE3 only)")
    cases = QUICK_CASES if args.quick else CASES
    if args._memory:
        index, instantiation, impl = args._memory.split(",")
        print(json.dumps(measure_memory(cases[int(index)], instantiation, impl, args.device, dtype)))
        return
    if args._time:
        index, instantiation, *impls = args._time.split(",")
        print(json.dumps(measure_time(cases[int(index)], instantiation, impls, args.device, dtype, args.repeats)))
        return
    chosen = [i for i in INSTANTIATIONS if not args.only or i in args.only.split(",")]
    rows = []
    for index, case in enumerate(cases):
        for inst in chosen:
            skip_reference = reference_bytes(case, inst, dtype) > MAX_REFERENCE_BYTES
            impls = ["nlzoo"] if skip_reference else ["nlzoo", "reference"]
            timed = run_isolated(args, "--_time", ",".join([str(index), inst, *impls]))
            ours = {"time_s": timed.get("nlzoo"), **run_isolated(args, "--_memory", f"{index},{inst},nlzoo")}
            if skip_reference:
                size = reference_bytes(case, inst, dtype) / 1e9
                ref = {"error": f"reference skipped: its affinity tensor alone is {size:.0f} GB"}
            else:
                ref = {"time_s": timed.get("reference"), **run_isolated(args, "--_memory", f"{index},{inst},reference")}
            note = " ".join(
                f"{label}: {res['error']}"
                for label, res in (("time", timed), ("nlzoo", ours), ("reference", ref))
                if "error" in res
            )
            ideal = macs(case, inst, "reference") / macs(case, inst, "nlzoo")
            t_ours, t_ref = ours.get("time_s"), ref.get("time_s")
            m_ours, m_ref = ours.get("peak_bytes"), ref.get("peak_bytes")
            rows.append(
                Row(
                    case=case.name,
                    subsample=case.subsample,
                    instantiation=inst,
                    nlzoo_ms=None if t_ours is None else 1e3 * t_ours,
                    reference_ms=None if t_ref is None else 1e3 * t_ref,
                    speedup=None if not (t_ours and t_ref) else t_ref / t_ours,
                    ideal_speedup=ideal,
                    nlzoo_peak_mb=None if m_ours is None else m_ours / 2**20,
                    reference_peak_mb=None if m_ref is None else m_ref / 2**20,
                    memory_ratio=None if not (m_ours and m_ref) else m_ref / m_ours,
                    note=note.strip(),
                )
            )
            if not args.json:
                print(_format(rows[-1]), flush=True)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))


def _format(r: Row) -> str:
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    pool = "pooled" if r.subsample else "unpooled"
    return (
        f"{r.case:32s} {pool:8s} {r.instantiation:17s}"
        f" time {f(r.nlzoo_ms, '8.1f')} ms vs {f(r.reference_ms, '8.1f')} ms"
        f"  speedup {f(r.speedup, '5.2f')}x (ideal {r.ideal_speedup:5.2f}x)"
        f"  peak {f(r.nlzoo_peak_mb, '7.1f')} MB vs {f(r.reference_peak_mb, '8.1f')} MB"
        f"  memory {f(r.memory_ratio, '6.1f')}x  {r.note}"
    )


if __name__ == "__main__":
    main()
