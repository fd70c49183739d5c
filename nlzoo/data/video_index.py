"""Which frames a video has, from the file itself: the frame index behind every reader.

Headers lie (frame counts that include zero-size drop frames, durations of 1 frame for raw streams, average
rates that ignore a 0.5 s start offset or variable frame rates), so frame ``k`` is defined as the ``k``-th
decodable frame in presentation order and found from the real timestamps:

1. a demux-only **packet scan** (cheap: no decoding) collects the presentation timestamps of the video
   stream's non-empty, non-discarded packets; sorted, frame ``k`` has the ``k``-th one. It is used where
   packets carry real timestamps: unique, present on every packet, in a container that stores them.
2. otherwise (raw elementary streams, missing or repeated timestamps), and whenever reading proves the packet
   scan wrong (a frame the decoder rejects, packed B-frames), a **decode scan** decodes the stream once
   (no pixel conversion) and records what the decoder really outputs. If those timestamps do not increase
   strictly, frames are addressed by their position in decode output (``pts is None``).

Indices are cached per file (path, size, mtime) in the process, so datasets scan each file once per worker.
Decode-scan indices, which cost a full decode, are also kept on disk (``NLZOO_VIDEO_INDEX_CACHE``, default
``~/.cache/nlzoo/video-index``; set it to an empty string to keep nothing on disk).
Packets the decoder rejects are skipped and counted, as players do; demuxer errors part-way are skipped too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NoReturn

import av
import numpy as np

from ..errors import LimitError
from ..files import atomic_write
from ..limits import limit

# AVFMT_NOTIMESTAMPS: the (raw) format stores no timestamps; the parser's guesses are not presentation times.
_NO_TIMESTAMPS = 0x0080
# Demuxer errors tolerated in one pass before the rest of the file is given up as unreadable.
MAX_DEMUX_ERRORS = 64
# Frames kept in the per-process index cache (8 bytes each): ~16 MiB.
CACHE_FRAMES = 2_000_000


@dataclass
class DecodeErrors:
    """What a pass over a file had to skip."""

    rejected_packets: int = 0
    demux_errors: int = 0


@dataclass(frozen=True)
class FrameIndex:
    """The decodable frames of one video stream.

    Attributes:
        num_frames: decodable frames.
        pts: presentation timestamps of frames 0..num_frames-1 (stream time base, increasing), or None when the
            file has no usable timestamps and frames are addressed by their order in decode output.
        keyframes: timestamps of keyframes (seek targets), increasing; empty without ``pts``.
        time_base: seconds per timestamp unit.
        exact: built by decoding (every frame seen), rather than from packets alone.
        rejected_packets: packets the decoder refused during the decode scan.
    """

    num_frames: int
    pts: np.ndarray | None
    keyframes: np.ndarray
    time_base: Fraction
    exact: bool
    rejected_packets: int = 0
    _lookup: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def frame_at(self, pts: int) -> int | None:
        """The index of the frame with timestamp ``pts`` (None if no frame has it)."""
        if self.pts is None:
            return None
        if not self._lookup:
            self._lookup.update((int(t), i) for i, t in enumerate(self.pts))
        return self._lookup.get(pts)

    def seek_targets(self, pts: int) -> list[int]:
        """Where to seek to get the frame at ``pts``: the nearest keyframe at or before it, then the one
        before that (open GOPs, and demuxers that seek by decode time), nearest first."""
        before = int(np.searchsorted(self.keyframes, pts, side="right"))
        return [int(self.keyframes[i]) for i in range(before - 1, max(before - 3, -1), -1)]

    def average_fps(self) -> float | None:
        """Frames per second over the real timestamps (None without timestamps or with one frame)."""
        if self.pts is None or self.num_frames < 2 or self.pts[-1] == self.pts[0]:
            return None
        return float((self.num_frames - 1) / ((int(self.pts[-1]) - int(self.pts[0])) * self.time_base))


def demuxed_packets(container: av.container.InputContainer, stream: av.VideoStream, errors: DecodeErrors):
    """The stream's non-empty packets in file order; a demuxer error skips ahead instead of ending the read.

    Zero-size packets (AVI drop frames, Theora "repeat frame" packets) carry no picture and are never sent to
    the decoder: FFmpeg would take one for the end of the stream.
    """
    while True:
        try:
            for packet in container.demux(stream):
                if packet.size:
                    yield packet
            return
        except av.FFmpegError:
            errors.demux_errors += 1
            if errors.demux_errors > MAX_DEMUX_ERRORS:
                return


def decoded_frames(
    container: av.container.InputContainer, stream: av.VideoStream, errors: DecodeErrors
) -> Iterator[av.VideoFrame]:
    """Decoded frames in output (presentation) order; a packet the decoder rejects is skipped and counted."""
    for packet in demuxed_packets(container, stream, errors):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            errors.rejected_packets += 1
            continue
        yield from frames
    try:
        yield from stream.codec_context.decode(None)
    except av.FFmpegError:
        errors.rejected_packets += 1


def scan_packets(container: av.container.InputContainer, stream: av.VideoStream) -> FrameIndex | None:
    """The index from a demux-only pass, or None where packet timestamps cannot be trusted."""
    time_base = Fraction(stream.time_base)
    if container.format.flags & _NO_TIMESTAMPS:
        return None
    pts, keys = [], []
    bound = limit("video_frames")
    for packet in demuxed_packets(container, stream, DecodeErrors()):
        if packet.is_discard:  # decoded for reference only (edit lists): the decoder drops its frame
            continue
        if packet.pts is None:
            return None
        pts.append(packet.pts)
        if len(pts) > bound:
            too_many_frames(container.name)
        if packet.is_keyframe:
            keys.append(packet.pts)
    order = np.sort(np.asarray(pts, dtype=np.int64))
    if len(order) > 1 and not (np.diff(order) > 0).all():
        return None
    return FrameIndex(len(order), order, np.sort(np.asarray(keys, dtype=np.int64)), time_base, exact=False)


def too_many_frames(path: str) -> NoReturn:
    """Refuse a video over the ``video_frames`` limit; scans stop there, as the index would otherwise grow with
    whatever the file holds."""
    bound = limit("video_frames")
    raise LimitError(
        f"{path}: more than {bound:,} frames, over the limit; cut the video shorter, or set "
        "NLZOO_MAX_VIDEO_FRAMES to raise the limit"
    )


def scan_frames(container: av.container.InputContainer, stream: av.VideoStream) -> FrameIndex:
    """The exact index from decoding the stream once (from wherever the container is: open it fresh)."""
    errors = DecodeErrors()
    pts: list[int | None] = []
    keys: list[int] = []
    bound = limit("video_frames")
    for frame in decoded_frames(container, stream, errors):
        pts.append(frame.pts)
        if len(pts) > bound:
            too_many_frames(container.name)
        if frame.key_frame and frame.pts is not None:
            keys.append(frame.pts)
    times = np.asarray([-1 if t is None else t for t in pts], dtype=np.int64)
    usable = None not in pts and (len(times) < 2 or bool((np.diff(times) > 0).all()))
    return FrameIndex(
        len(pts),
        times if usable else None,
        np.asarray(sorted(keys) if usable else [], dtype=np.int64),
        Fraction(stream.time_base),
        exact=True,
        rejected_packets=errors.rejected_packets,
    )


def disk_cache_dir() -> Path | None:
    """Where exact (decode-scan) indices are kept across processes; None: nowhere."""
    value = os.environ.get("NLZOO_VIDEO_INDEX_CACHE")
    if value is not None:
        return Path(value) if value else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nlzoo" / "video-index"


def _disk_path(folder: Path, key: tuple) -> Path:
    return folder / f"{hashlib.sha256(repr(key).encode()).hexdigest()[:32]}.npz"


def save_index(folder: Path, key: tuple, index: FrameIndex) -> None:
    """Write ``index`` atomically (a temporary file renamed); a cache that cannot be written is skipped."""
    arrays = {
        "num_frames": index.num_frames,
        "pts": index.pts if index.pts is not None else np.zeros(0, np.int64),
        "has_pts": index.pts is not None,
        "keyframes": index.keyframes,
        "time_base": np.asarray([index.time_base.numerator, index.time_base.denominator]),
        "rejected_packets": index.rejected_packets,
    }
    with contextlib.suppress(OSError):
        atomic_write(_disk_path(folder, key), lambda tmp: np.savez(tmp, **arrays))  # tmp ends in .npz: kept as is


def load_index(folder: Path, key: tuple) -> FrameIndex | None:
    """The exact index saved for ``key`` (None if absent or unreadable). Plain arrays only: no pickles."""
    try:
        with np.load(_disk_path(folder, key), allow_pickle=False) as saved:
            return FrameIndex(
                int(saved["num_frames"]),
                saved["pts"] if bool(saved["has_pts"]) else None,
                saved["keyframes"],
                Fraction(*(int(v) for v in saved["time_base"])),
                exact=True,
                rejected_packets=int(saved["rejected_packets"]),
            )
    except (OSError, KeyError, ValueError):
        return None


class IndexCache:
    """Frame indices by (path, size, mtime, stream), least recently used dropped past ``max_frames``; exact
    ones also on disk with ``on_disk`` (in ``folder``, default :func:`disk_cache_dir`)."""

    def __init__(self, max_frames: int = CACHE_FRAMES, *, folder: Path | None = None, on_disk: bool = True) -> None:
        self.max_frames = max_frames
        self._folder, self._on_disk = folder, on_disk
        self._entries: OrderedDict[tuple, FrameIndex] = OrderedDict()
        self._frames = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(path: str, stream_index: int) -> tuple:
        stat = os.stat(path)
        return os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stream_index

    @property
    def folder(self) -> Path | None:
        if not self._on_disk:
            return None
        return self._folder if self._folder is not None else disk_cache_dir()

    def get(self, key: tuple) -> FrameIndex | None:
        with self._lock:
            index = self._entries.get(key)
            if index is not None:
                self._entries.move_to_end(key)
                return index
        folder = self.folder
        index = load_index(folder, key) if folder is not None else None
        if index is not None:
            self.put(key, index, save=False)
        return index

    def put(self, key: tuple, index: FrameIndex, *, save: bool = True) -> None:
        folder = self.folder
        if save and index.exact and folder is not None:
            save_index(folder, key, index)
        with self._lock:
            old = self._entries.pop(key, None)
            self._frames -= old.num_frames if old is not None else 0
            self._entries[key] = index
            self._frames += index.num_frames
            while self._frames > self.max_frames and len(self._entries) > 1:
                self._frames -= self._entries.popitem(last=False)[1].num_frames

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._frames = 0

    def get_or_build(self, key: tuple, build: Callable[[], FrameIndex]) -> FrameIndex:
        index = self.get(key)
        if index is None:
            index = build()
            self.put(key, index)
        return index


INDEX_CACHE = IndexCache()
