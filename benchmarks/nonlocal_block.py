"""Non-local block: nlzoo's exact fast paths vs the common materialising implementations.

For each instantiation at the paper's shapes (res3 / res4 of an 8x8 R50 video model, with and without the
(1,2,2) subsampling, and a 2D 56x56 map) this measures forward+backward time (median) and peak memory of
nlzoo's block against a reference block built from the SAME 1x1 convs and norm, whose pairwise step is
written the way mmcv / pytorchvideo / PySlowFast / timm write it (bmm + softmax over a materialised
affinity; repeat + cat for concatenation). Each (case, implementation) runs in its own subprocess so the
peak memory (max RSS growth on CPU, max allocated on CUDA) belongs to that run alone.

    python benchmarks/nonlocal_block.py [--quick] [--json] [--device cuda --dtype bfloat16]

Prints ratios reference / nlzoo (higher is better for nlzoo) beside the ideal ratio from FLOP counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

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


# ---- One measurement (runs in a subprocess) --------------------------------------------------------
def measure(case: Case, instantiation: str, impl: str, device: str, dtype: torch.dtype, repeats: int) -> dict:
    block = build(case, instantiation, impl, device, dtype)
    x = torch.randn(case.batch, case.channels, *case.positions, device=device, dtype=dtype, requires_grad=True)

    def step() -> None:
        block(x).float().square().mean().backward()

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    # Warm up the libraries (thread pools, kernel selection) on a small input so the peak below is the step's.
    small = [max(2, s // 4) for s in case.positions]
    block(torch.randn(case.batch, case.channels, *small, device=device, dtype=dtype)).sum().backward()
    block.zero_grad(set_to_none=True)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(repeats):
        block.zero_grad(set_to_none=True)
        x.grad = None
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return {"time_s": statistics.median(times), "peak_bytes": max(peak, 0)}


def run_isolated(args: argparse.Namespace, case_index: int, instantiation: str, impl: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--_one",
        f"{case_index},{instantiation},{impl}",
        "--device",
        args.device,
        "--dtype",
        args.dtype,
        "--repeats",
        str(args.repeats),
    ] + (["--quick"] if args.quick else [])
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
    parser.add_argument("--_one", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    cases = QUICK_CASES if args.quick else CASES
    if args._one:
        index, instantiation, impl = args._one.split(",")
        print(json.dumps(measure(cases[int(index)], instantiation, impl, args.device, dtype, args.repeats)))
        return
    chosen = [i for i in INSTANTIATIONS if not args.only or i in args.only.split(",")]
    rows = []
    for index, case in enumerate(cases):
        for inst in chosen:
            ours = run_isolated(args, index, inst, "nlzoo")
            note = ""
            if reference_bytes(case, inst, dtype) > MAX_REFERENCE_BYTES:
                ref = {
                    "error": f"reference skipped: its affinity tensor alone is "
                    f"{reference_bytes(case, inst, dtype) / 1e9:.0f} GB"
                }
            else:
                ref = run_isolated(args, index, inst, "reference")
            for label, res in (("nlzoo", ours), ("reference", ref)):
                if "error" in res:
                    note += f"{label}: {res['error']} "
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
