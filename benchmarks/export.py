"""onnxruntime (CPU) vs PyTorch latency for an exported video network, batch 1.

Exports ``i3d_r50_nl`` (random weights: latency does not depend on them) at 8x224x224 with
:func:`nlzoo.export_onnx` (dynamo exporter, parity checked), then times, interleaved round by round so that
load from other processes hits every contestant alike:

* PyTorch eager, fp32, contiguous weights (the reference);
* PyTorch's fastest inference path here: channels-last weights under ``nlzoo.precision`` ``auto``
  (bf16 autocast where the CPU has bf16 units), its output's difference from fp32 reported;
* onnxruntime's CPU provider on the exported file (all graph optimisations, threads = torch's).

    python benchmarks/export.py [--quick] [--rounds N] [--model NAME] [--frames T] [--size S]

``--quick`` uses i3d_r18_nl at 4x64x64 and 2 rounds (a smoke test). Printed: median ms and ratios to eager.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import nlzoo
from nlzoo.models import to_channels_last
from nlzoo.precision import inference_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default="i3d_r50_nl")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.model, args.frames, args.size, args.rounds = "i3d_r18_nl", 4, 64, 2
    import onnxruntime as ort

    model = nlzoo.load(args.model, pretrained=False).eval()
    shape = (3, args.frames, args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = nlzoo.export_onnx(model, Path(tmp) / "model.onnx", input_shape=shape)
        export_s = time.perf_counter() - start
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(report.path), options, providers=["CPUExecutionProvider"])
    fast = to_channels_last(nlzoo.load(args.model, pretrained=False).eval())
    fast.load_state_dict(model.state_dict())
    x = torch.randn(1, *shape)
    feed = {session.get_inputs()[0].name: x.numpy()}

    def eager() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    def fastest() -> torch.Tensor:
        with torch.inference_mode(), inference_precision("auto", "cpu"):
            return fast(x)

    def onnxruntime() -> object:
        return session.run(None, feed)

    contestants = {
        "pytorch eager fp32": eager,
        "pytorch channels-last + auto precision": fastest,
        "onnxruntime cpu": onnxruntime,
    }
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for fn in contestants.values():  # warm-up (oneDNN primitive caches, ORT arena)
        fn()
    for _ in range(args.rounds):
        for name, fn in contestants.items():
            begin = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - begin)
    with inference_precision("auto", "cpu") as precision:
        pass
    fast_out = fastest().float()
    ref = eager()
    fast_diff = float((fast_out - ref).abs().max() / ref.abs().max())

    print(f"{args.model} at {args.frames}x{args.size}x{args.size}, batch 1, {args.rounds} interleaved rounds")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, onnxruntime {ort.__version__}; export {export_s:.0f} s, opset {report.opset}, "
        f"onnxruntime vs eager max rel diff {report.max_rel_diff:.1e}"
    )
    base = statistics.median(times["pytorch eager fp32"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:42s} {median * 1e3:9.1f} ms   {base / median:5.2f}x eager")
    print(f"  (auto precision resolved to {precision}; its max rel diff from fp32 {fast_diff:.1e})")


if __name__ == "__main__":
    main()
