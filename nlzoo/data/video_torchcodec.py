"""Optional backend: torchcodec (``backend="torchcodec"``) decoding over the same frame index as PyAV.

torchcodec does not bundle FFmpeg: it loads the system's libavcodec (FFmpeg 4 to 8), so it works only where
those libraries are installed (Debian/Ubuntu: ``apt-get install ffmpeg``). Frame ``k`` is still defined by
:mod:`.video_index` (built with PyAV's demuxer), so both backends return the same frames: torchcodec is asked
for the frame shown at the midpoint between frame ``k``'s timestamp and the next one. Files without usable
timestamps have no times to ask for, and torchcodec stops at the first packet the decoder refuses; those
reads fall back to PyAV's tolerant decoding. So do containers whose timestamps are derived rather than stored
(AVI, MPEG program streams, Ogg, raw streams): after a seek in an AVI with B-frames, torchcodec 0.17 returned other
frames' pictures under the right timestamps. torchcodec turns frames by their display matrix itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch

from ..errors import LimitError, VideoDecodeError
from .video_pyav import PyAVReader
from .video_reader import VideoReader, register_backend
from .video_transforms import resize_frame

TRUSTED_CONTAINERS = {"mov", "mp4", "matroska", "webm"}  # stored timestamps (see the module docstring)
DECODE_BATCH = 8  # frames decoded per call when they are resized: the full-size frames held at once
INSTALL_HINT = "pip install 'nlzoo[torchcodec]' and install FFmpeg's shared libraries (apt-get install ffmpeg)"


def torchcodec_unavailable() -> str | None:
    """Why torchcodec cannot decode here (None when it can)."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except ImportError as err:
        return f"torchcodec is not installed ({err}); {INSTALL_HINT}"
    except (OSError, RuntimeError) as err:  # raised when no usable libavcodec is found
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"torchcodec cannot load FFmpeg's libraries ({first}); {INSTALL_HINT}"
    return None


class TorchCodecReader(VideoReader):
    """Frames decoded by torchcodec at the times of the shared frame index."""

    def __init__(self, path: str, *, threads: int = 1) -> None:
        problem = torchcodec_unavailable()
        if problem is not None:
            raise VideoDecodeError(path, problem)
        from torchcodec.decoders import VideoDecoder

        self.path = path
        self._pyav = PyAVReader(path, threads=threads)  # the index (cached), and the fallback decoder
        self._decoder = None
        if self._pyav.index.pts is None or not set(self._pyav.container_format.split(",")) & TRUSTED_CONTAINERS:
            return
        try:
            self._decoder = VideoDecoder(path, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=threads)
        except (RuntimeError, ValueError) as err:
            self._pyav.close()
            raise VideoDecodeError(path, f"torchcodec cannot open it ({err})") from err

    @property
    def num_frames(self) -> int:  # type: ignore[override]
        return self._pyav.num_frames

    @property
    def fps(self) -> float:  # type: ignore[override]
        return self._pyav.fps

    def _times(self, indices: Sequence[int]) -> list[float]:
        """Midpoints between the wanted frames' timestamps and the next ones, in seconds."""
        index = self._pyav.index
        pts = index.pts.astype(np.float64)
        last_step = pts[-1] - pts[-2] if len(pts) > 1 else 1.0
        following = np.append(pts[1:], pts[-1] + last_step)
        wanted = np.asarray(indices)
        return ((pts[wanted] + following[wanted]) / 2 * float(Fraction(index.time_base))).tolist()

    def get_frames(self, indices: Sequence[int], *, short_side: int | None = None) -> torch.Tensor:
        if self._decoder is None or self._pyav.index.pts is None:
            return self._pyav.get_frames(indices, short_side=short_side)
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise VideoDecodeError(self.path, f"frame indices {bad[:5]} outside 0..{self.num_frames - 1}")
        times = self._times(indices)
        step = len(times) if short_side is None else DECODE_BATCH
        try:
            batches = [self._played_at(times[i : i + step], short_side) for i in range(0, len(times), step)]
        except RuntimeError:  # a packet the decoder refuses ends torchcodec's read
            return self._pyav.get_frames(indices, short_side=short_side)
        return torch.cat(batches)

    def _played_at(self, seconds: list[float], short_side: int | None) -> torch.Tensor:
        frames = self._decoder.get_frames_played_at(seconds=seconds).data
        if short_side is None:
            return frames
        try:
            return torch.stack([resize_frame(frame, short_side) for frame in frames])
        except LimitError as err:  # a strip too narrow to scale up
            raise LimitError(f"{self.path}: {err}") from None

    def close(self) -> None:
        self._pyav.close()


@register_backend("torchcodec")
def open_torchcodec(path: str, *, threads: int = 1) -> VideoReader:
    """Open with torchcodec (needs torchcodec and the system's FFmpeg libraries)."""
    return TorchCodecReader(path, threads=threads)
