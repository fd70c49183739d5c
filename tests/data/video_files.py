"""Test videos whose pixels say which frame they are, and broken files for the skip tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch

HEIGHT, WIDTH = 48, 64
MARKER = 6  # columns: white at the left edge, black at the right edge


def numbered_frame(i: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Top half encodes i // 16, bottom half i % 16 (levels 16 k + 8, robust to H.264), edge markers at the sides."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[: height // 2] = (i // 16) * 16 + 8
    frame[height // 2 :] = (i % 16) * 16 + 8
    frame[:, :MARKER] = 255
    frame[:, width - MARKER :] = 0
    return frame


def write_numbered_video(
    path: Path,
    num_frames: int,
    *,
    fps: int = 25,
    gop: int = 8,
    bframes: int = 2,
    size: tuple[int, int] = (HEIGHT, WIDTH),
) -> Path:
    """H.264 with short GOPs and B-frames, so reads must seek and reorder correctly."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": str(gop), "bf": str(bframes), "crf": "12"})
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(num_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(numbered_frame(i, *size), format="rgb24")))
        container.mux(stream.encode())
    return path


def frame_number(frame: torch.Tensor) -> int:
    """Read the number back from a (H, W, 3) or (3, H, W) frame with values on the 0-255 scale."""
    if frame.shape[0] == 3:
        frame = frame.permute(1, 2, 0)
    frame = frame.float()
    h, w = frame.shape[:2]
    centre = slice(w // 2 - 8, w // 2 + 8)
    high = frame[2 : h // 2 - 2, centre].mean().item()
    low = frame[h // 2 + 2 : h - 2, centre].mean().item()
    return round((high - 8) / 16) * 16 + round((low - 8) / 16)


def broken_videos(folder: Path, good: Path) -> dict[str, Path]:
    """A missing path, an empty file, random bytes and a copy of ``good`` cut in half."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    truncated = folder / "truncated.mp4"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return {"missing": folder / "missing.mp4", "empty": empty, "garbage": garbage, "truncated": truncated}
