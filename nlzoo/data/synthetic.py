"""A synthetic video dataset that needs long-range relations: "do two distant objects share a colour?"

Each video shows a noisy grey background with drifting grey distractor squares. A coloured square A is
visible in the first ~35% of the frames, another coloured square B in the last ~35%, at a distant place
(centres at least half the frame apart). The label is whether A and B have the same colour; colours
come from a palette of ``num_colours`` and both objects' colours are uniformly distributed in either
class, so neither object alone says anything about the label.

Why a local network cannot solve it but a non-local one can:

- A and B are never visible in the same frame, nor (with the clip covering the video at stride 1 or 2)
  in the same pair of frames merged by the (2,1,1) temporal max-pool after res2. A C2D ResNet processes
  frames independently up to that pool and the pooled frame pairs independently after it; they meet
  only in the global average pool, after which the head is linear. Its logit is therefore a *sum*
  g(frames with A) + h(frames with B) + (terms independent of the label). "Same colour" is not such a
  sum: g(a)+h(a) > t and g(b)+h(b) > t contradict g(a)+h(b) < t and g(b)+h(a) < t. The best a sum can do
  is to flag one colour pair, i.e. accuracy at most about 1/2 + 1/(2 * num_colours) (58% for 6 colours).
- The objects are also far apart in space, beyond the small effective receptive field of a shallow
  network at 64 px; I3D's temporal kernels can in principle span the clip, but only through many layers.
- A non-local block relates every position to every other one in a single step (the paper's Eq. 1):
  B's position can attend to A's across time and space, and the following convolutions compare the two
  colours at one place.

Videos are real H.264 MP4 files written with PyAV, so training reads them through the same decoder as
real data. Generation is deterministic given the spec (byte-identical files) and fast (a few ms per clip).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..errors import ConfigError
from .synthetic_common import PALETTE, SPLITS, SplitSpec, ensure_dataset, write_dataset


@dataclass(frozen=True)
class SyntheticVideoSpec(SplitSpec):
    """What to generate (recorded in ``meta.json`` so a different spec is never silently reused).

    Args:
        num_train: training videos.
        num_val: validation videos.
        num_test: test videos.
        num_frames: frames per video.
        size: (H, W) in pixels.
        num_colours: palette size (2..8); more colours lower what a local model can reach by chance.
        object_size: side of the two coloured squares, in pixels.
        margin: minimum distance of the squares from the border, so crops that remove less keep them.
        distractors: drifting grey squares per video.
        noise: standard deviation of the per-pixel background noise (0-255 scale).
        fps: frame rate written in the files.
        seed: everything is a function of this seed.
    """

    num_train: int = 256
    num_val: int = 64
    num_test: int = 64
    num_frames: int = 16
    size: tuple[int, int] = (64, 64)
    num_colours: int = 6
    object_size: int = 8
    margin: int = 10
    distractors: int = 3
    noise: float = 12.0
    fps: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_colours <= len(PALETTE):
            raise ConfigError(f"num_colours must be in 2..{len(PALETTE)}; got {self.num_colours}")
        if self.num_frames < 6:
            raise ConfigError(f"num_frames must be >= 6 so the two objects' frames are apart; got {self.num_frames}")
        if min(self.size) < 2 * self.margin + 2 * self.object_size:
            raise ConfigError(f"size {self.size} leaves no room for two {self.object_size}px objects and the margin")
        if min(self.num_train, self.num_val, self.num_test) < 0 or self.num_train < 1:
            raise ConfigError("video counts must be >= 0, with at least one training video")


def render_video(spec: SyntheticVideoSpec, rng: np.random.Generator, *, same: bool) -> np.ndarray:
    """One video as (T, H, W, 3) uint8 frames."""
    t, (h, w), s = spec.num_frames, spec.size, spec.object_size
    level = rng.uniform(30, 90)
    frames = level + rng.normal(0.0, spec.noise, size=(t, h, w, 3))
    for _ in range(spec.distractors):
        _draw_distractor(frames, rng, grey=rng.uniform(110, 210), side=int(rng.integers(s - 2, s + 3)))
    first = int(rng.integers(spec.num_colours))
    second = first if same else int((first + rng.integers(1, spec.num_colours)) % spec.num_colours)
    pos_a, pos_b = _far_apart_positions(spec, rng)
    window = max(2, round(0.35 * t))
    for (y, x), colour, frame_range in ((pos_a, first, range(window)), (pos_b, second, range(t - window, t))):
        rgb = np.asarray(PALETTE[colour], dtype=float) + rng.uniform(-15, 15, size=3)
        frames[list(frame_range), y : y + s, x : x + s] = rgb
    return np.clip(frames, 0, 255).astype(np.uint8)


def _far_apart_positions(spec: SyntheticVideoSpec, rng: np.random.Generator) -> tuple[tuple[int, int], ...]:
    (h, w), s, m = spec.size, spec.object_size, spec.margin
    min_dist = 0.5 * min(h, w)
    while True:
        ys = rng.integers(m, h - m - s + 1, size=2)
        xs = rng.integers(m, w - m - s + 1, size=2)
        if np.hypot(ys[0] - ys[1], xs[0] - xs[1]) >= min_dist:
            return (int(ys[0]), int(xs[0])), (int(ys[1]), int(xs[1]))


def _draw_distractor(frames: np.ndarray, rng: np.random.Generator, *, grey: float, side: int) -> None:
    t, h, w, _ = frames.shape
    start = rng.uniform([0, 0], [h - side, w - side])
    velocity = rng.uniform(-2.0, 2.0, size=2)
    for i in range(t):
        y, x = np.clip(start + i * velocity, 0, [h - side, w - side]).astype(int)
        frames[i, y : y + side, x : x + side] = grey


def write_mp4(path: str | os.PathLike[str], frames: np.ndarray, *, fps: int) -> None:
    """Encode (T, H, W, 3) uint8 frames as H.264 (yuv420p) in an MP4 file.

    x264's macroblock-tree rate control is off: with it, repeated encodes of the same frames differ.
    """
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast", "mbtree": "0"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def write_synthetic_videos(root: str | os.PathLike[str], spec: SyntheticVideoSpec) -> Path:
    """Write the dataset under ``root`` (atomically: a temporary folder renamed at the end).

    Layout: ``videos/<split>/<nnnnn>.mp4``, list files ``train.txt`` / ``val.txt`` / ``test.txt``
    (``videos/train/00000.mp4 1``), ``labels.txt`` (class names) and ``meta.json`` (the spec).

    Raises:
        FileExistsError: ``root`` already exists.
    """

    def fill(tmp: Path) -> None:
        for split_id, split in enumerate(SPLITS):
            (tmp / "videos" / split).mkdir(parents=True)
            labels = np.random.default_rng([spec.seed, split_id]).permutation(np.arange(spec.count(split)) % 2)
            lines = []
            for i, label in enumerate(labels):
                rng = np.random.default_rng([spec.seed, split_id, i])
                name = f"videos/{split}/{i:05d}.mp4"
                write_mp4(tmp / name, render_video(spec, rng, same=bool(label)), fps=spec.fps)
                lines.append(f"{name} {int(label)}\n")
            (tmp / f"{split}.txt").write_text("".join(lines))

    return write_dataset(root, spec, fill)


def ensure_synthetic_videos(root: str | os.PathLike[str], spec: SyntheticVideoSpec) -> Path:
    """Generate the dataset unless ``root`` already holds exactly this spec.

    Raises:
        ValueError: ``root`` holds something else (another spec, or no ``meta.json``).
    """
    return ensure_dataset(root, spec, write_synthetic_videos)
