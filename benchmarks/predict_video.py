"""``nlzoo predict-video`` end to end on a 10 s 720p video with the paper's 10x3 test views.

Writes a 10 s 1280x720 30 fps H.264 video (a moving square over a noisy gradient), saves a randomly
initialised i3d_r50_nl (the default tag's data config: 8 frames every 8th, 256 short side, 224 crops)
as a model folder, then measures in one run:

- the whole command (``nlzoo predict-video VIDEO --model DIR --views 10x3``, default ``--precision auto``):
  wall seconds, model loading included;
- its parts: decoding and cutting the 30 views (:func:`nlzoo.inference.inputs.read_video_views`) and the
  model over them (:func:`nlzoo.models.inference.predict_batches`, batch 4) at ``auto`` and at fp32,
  so the share spent decoding vs in the model is visible for both;
- the views of a 3 s 2160p (4K) video, each way in a fresh process (peak RSS, seconds): frames scaled to
  the short side as they are decoded (what nlzoo does) vs decoded at full size and scaled afterwards (the
  reference, what nlzoo did before), and whether the two give the same views.

    python benchmarks/predict_video.py [--quick] [--json]

``--quick``: 2 s at 320x240, c2d_r18_nl, 2x3 views, a 1 s 640x360 "4K" video (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

import nlzoo
from nlzoo.cli import main as nlzoo_main
from nlzoo.inference.inputs import load_for_inference, read_video_views
from nlzoo.models.inference import predict_batches
from nlzoo.precision import cpu_model, resolve_precision


def write_video(path: Path, *, seconds: int, size: tuple[int, int], fps: int = 30) -> Path:
    """H.264 frames streamed to ``path`` (never the whole video in memory)."""
    rng = np.random.default_rng(0)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    base = (ys / h * 120 + xs / w * 60)[..., None] + np.zeros(3, np.float32)
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast"})
        stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
        noise = rng.normal(0, 6, (8, h, w, 3)).astype(np.float32)  # cycled: cheap, still camera-like
        for t in range(seconds * fps):
            frame = base + noise[t % len(noise)]
            y, x = (t * 4) % (h - 80), (t * 7) % (w - 80)
            frame[y : y + 80, x : x + 80] = (200, 40, 40)
            array = np.clip(frame, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    video = write_video(root / "video.mp4", seconds=args.seconds, size=args.size)
    model = nlzoo.load(args.model, pretrained=False)
    folder = nlzoo.save_pretrained(model, root / "model")
    clips, crops = args.views

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = nlzoo_main(["predict-video", str(video), "--model", str(folder), "--views", f"{clips}x{crops}"])
    command_s = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"predict-video exited with {code}")

    prepared = load_for_inference(str(folder))
    config = prepared.nlzoo_config.data_config
    decode_s, model_s = [], {"auto": [], "fp32": []}
    for _ in range(args.repeats):  # interleaved: load from other processes hits every part alike
        start = time.perf_counter()
        views = read_video_views(video, config, num_clips=clips, num_crops=crops)
        decode_s.append(time.perf_counter() - start)
        for precision in model_s:
            start = time.perf_counter()
            for _ in predict_batches(prepared, views, batch_size=4, precision=precision):
                pass
            model_s[precision].append(time.perf_counter() - start)
    decode, models = min(decode_s), {p: min(s) for p, s in model_s.items()}
    uhd = write_video(root / "uhd.mp4", seconds=args.uhd_seconds, size=args.uhd_size)
    large = {way: read_in_child(uhd, folder, way, root / f"{way}.pt", args.views) for way in ("as_decoded", "after")}
    same = torch.equal(torch.load(root / "as_decoded.pt"), torch.load(root / "after.pt"))
    return {
        "environment": {
            "torch": torch.__version__,
            "cpu": f"{cpu_model()} ({platform.machine()})",
            "threads": torch.get_num_threads(),
            "auto": resolve_precision("auto"),
        },
        "video": f"{args.seconds} s {args.size[1]}x{args.size[0]} 30 fps H.264",
        "model": args.model,
        "views": f"{clips}x{crops}",
        "command_s": command_s,
        "decode_s": decode,
        "model_s": models,
        "decode_share": {p: decode / (decode + s) for p, s in models.items()},
        "auto_speedup": models["fp32"] / models["auto"],
        "large_video": {
            "video": f"{args.uhd_seconds} s {args.uhd_size[1]}x{args.uhd_size[0]} 30 fps H.264",
            **large,
            "rss_ratio": large["after"]["max_rss_mb"] / large["as_decoded"]["max_rss_mb"],
            "same_views": same,
        },
    }


CHILD = """
import sys, time, torch
from nlzoo.data.video_io import read_frames
from nlzoo.data.video_dataset import read_views
from nlzoo.data.video_transforms import EvalViewTransform
from nlzoo.zoo import resolve_data_config
video, folder, way, out, clips, crops = sys.argv[1:5] + [int(v) for v in sys.argv[5:7]]
sys.path.insert(0, sys.argv[7])
from timing import peak_rss  # this process's own high-water mark (ru_maxrss starts from the parent's RSS)
config = resolve_data_config(folder)
start = time.perf_counter()
if way == "as_decoded":
    frames = read_views(video, config, num_clips=clips)
else:  # the reference: full-size frames, then the transform's resize
    from nlzoo.data.clip_sampling import uniform_clips
    def pick(n):
        spans = uniform_clips(n, num_clips=clips, num_frames=config.num_frames, sampling_rate=config.sampling_rate)
        return [i for clip in spans for i in clip]
    frames = read_frames(video, pick)[0]
transform = EvalViewTransform(config, num_crops=crops)
views = torch.cat([transform(clip) for clip in frames.split(config.num_frames)])
seconds = time.perf_counter() - start
torch.save(views, out)
print(seconds, peak_rss() / 2**20)
"""


def read_in_child(video: Path, folder: Path, way: str, out: Path, views: tuple[int, int]) -> dict[str, float]:
    """Cut the views of ``video`` in a fresh process (its peak RSS is this read's alone)."""
    here = Path(__file__).resolve().parent
    argv = [sys.executable, "-c", CHILD, str(video), str(folder), way, str(out), *map(str, views), str(here)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    seconds, rss_mb = map(float, done.stdout.split()[-2:])
    return {"seconds": seconds, "max_rss_mb": rss_mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small video and model (smoke test)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.size, args.model, args.views, args.repeats = 2, (240, 320), "c2d_r18_nl", (2, 3), 1
        args.uhd_seconds, args.uhd_size = 1, (360, 640)
    else:
        args.seconds, args.size, args.model, args.views, args.repeats = 10, (720, 1280), "i3d_r50_nl", (10, 3), 2
        args.uhd_seconds, args.uhd_size = 3, (2160, 3840)
    with tempfile.TemporaryDirectory() as tmp:
        report = measure(args, Path(tmp))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    env = report["environment"]
    print(f"torch {env['torch']} on {env['cpu']}, {env['threads']} threads; auto = {env['auto']}")
    print(f"{report['model']} on a {report['video']} video, {report['views']} views")
    print(f"  nlzoo predict-video (auto, model loading included): {report['command_s']:.1f} s")
    for precision, seconds in report["model_s"].items():
        share = report["decode_share"][precision]
        print(
            f"  {precision:>4}: decode {report['decode_s']:.1f} s + model {seconds:.1f} s; "
            f"decoding is {100 * share:.0f}% of the two"
        )
    print(f"  model time fp32 / auto: {report['auto_speedup']:.2f}x")
    large = report["large_video"]
    print(f"views of a {large['video']} video, each way in a fresh process:")
    for way, label in (("as_decoded", "scaled as decoded (nlzoo)"), ("after", "scaled after decoding (reference)")):
        print(f"  {label:>34}: {large[way]['seconds']:.1f} s, peak RSS {large[way]['max_rss_mb']:,.0f} MB")
    print(f"  peak RSS reference / nlzoo: {large['rss_ratio']:.2f}x; same views: {large['same_views']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
