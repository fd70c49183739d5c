"""The default decoder: PyAV (FFmpeg bundled in its wheels) over the frame index of :mod:`.video_index`.

A run of wanted frames is read by seeking to a keyframe before it and decoding forward, matching frames by
their timestamps. If the seek lands past the run (demuxers that seek by decode time) or an open GOP's
leading B-frames do not come out, it seeks one keyframe further back, then decodes from the start. Files
without usable timestamps are read in decode order from the start. If a frame the packet scan promised never
comes out, or the decoder rejects a packet on the way, the index is rebuilt by decoding once and cached
(:class:`~.video_reader.IndexCorrected`). A damaged packet is thus found by the first read that decodes it;
``exact=True`` decodes the whole stream on open instead, for a guarantee up front.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterator, Sequence

import av
import numpy as np
import torch

from ..errors import LimitError, VideoDecodeError
from ..limits import limit
from .video_index import (
    INDEX_CACHE,
    DecodeErrors,
    FrameIndex,
    IndexCache,
    decoded_frames,
    scan_frames,
    scan_packets,
    too_many_frames,
)
from .video_reader import IndexCorrected, VideoReader, check_video_path, register_backend, split_runs
from .video_transforms import resize_frame

Picture = tuple[tuple[int, int], torch.Tensor]  # a decoded frame's (height, width), and its pixels as kept


def _video_stream(container: av.container.InputContainer, path: str) -> av.VideoStream:
    """The first video stream that is not a cover picture (audio, subtitle and data streams are ignored)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise VideoDecodeError(path, "no video stream (audio, subtitles or images only); give a video file")


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB, turned by the frame's display matrix the way players show it."""
    pixels = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise degrees
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


class PyAVReader(VideoReader):
    """Frame-exact reads with PyAV.

    Args:
        path: the video file.
        threads: decoder threads (1 suits DataLoader workers; 0: FFmpeg's choice, one per core).
        exact: build the index by decoding the whole stream (not from packets), unless an exact one is cached.
        cache: where indices are kept between opens.
    """

    def __init__(self, path: str, *, threads: int = 1, exact: bool = False, cache: IndexCache = INDEX_CACHE) -> None:
        self.path = check_video_path(path)
        self._threads, self._cache, self._exact = threads, cache, exact
        self._container: av.container.InputContainer | None = None
        self._open()
        self._errors = DecodeErrors()
        try:
            self._key = cache.key(self.path, self._stream.index)
            self.index = cache.get_or_build(self._key, self._build_index)
            if exact and not self.index.exact:
                self.index = self._exact_index()
                cache.put(self._key, self.index)
            self._check_frames()
        except BaseException:
            self.close()
            raise
        self._cursor: tuple[int, Iterator[av.VideoFrame]] | None = None  # decode-order position, for pts-less files

    def _open(self) -> None:
        self.close()
        try:
            self._container = av.open(self.path)
        except (av.FFmpegError, UnicodeDecodeError) as err:
            raise VideoDecodeError(self.path, f"not a video FFmpeg can open ({err})") from err
        self.container_format = self._container.format.name  # e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi"
        self._stream = _video_stream(self._container, self.path)
        self._stream.codec_context.thread_count = self._threads
        self._check_size(self._stream.codec_context.width, self._stream.codec_context.height)

    def _check_size(self, width: int, height: int) -> None:
        """Refuse frames over the ``image_pixels`` limit before decoding one (the header's size at open; each
        frame's own before its RGB copy, as the size can change mid-stream)."""
        bound = limit("image_pixels")
        if width * height > bound:
            fits = int(math.sqrt(bound * height / width)) // 2 * 2  # a height whose scaled frame is within it
            raise LimitError(
                f"{self.path}: its {width}x{height} frames have {width * height:,} pixels, over the limit of "
                f"{bound:,}; scale it down first, e.g. ffmpeg -i {shlex.quote(self.path)} -vf scale=-2:{fits} "
                "smaller.mp4, or set NLZOO_MAX_IMAGE_PIXELS to raise the limit"
            )

    def _build_index(self) -> FrameIndex:
        index = None if self._exact else scan_packets(self._container, self._stream)
        return self._exact_index() if index is None else index

    def _exact_index(self) -> FrameIndex:
        self._open()
        index = scan_frames(self._container, self._stream)
        self._open()
        return index

    def _check_frames(self) -> None:
        if self.index.num_frames == 0:
            rejected = f"; the decoder rejected {self.index.rejected_packets} packets" if self.index.exact else ""
            raise VideoDecodeError(self.path, f"no decodable video frames{rejected}")
        if self.index.num_frames > limit("video_frames"):  # an index cached under a higher limit
            too_many_frames(self.path)
        self.num_frames = self.index.num_frames
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = self.index.average_fps() or (float(rate) if rate else 0.0)

    @property
    def rejected_packets(self) -> int:  # type: ignore[override]
        return self._errors.rejected_packets

    def get_frames(self, indices: Sequence[int], *, short_side: int | None = None) -> torch.Tensor:
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise VideoDecodeError(self.path, f"frame indices {bad[:5]} outside 0..{self.num_frames - 1}")
        rejected = self._errors.rejected_packets
        found = self._read(indices, short_side)
        missing = sorted(set(indices) - set(found))
        if (missing or self._errors.rejected_packets > rejected) and not self.index.exact:
            # A packet the decoder refuses has no frame: the packet scan's numbering is off from there on.
            counted = self.num_frames
            self._correct_index()
            if self.num_frames != counted:
                raise IndexCorrected(self.path, counted, self.num_frames)
            found = self._read(indices, short_side)
            missing = sorted(set(indices) - set(found))
        if missing:
            raise VideoDecodeError(
                self.path,
                f"frames {missing[:5]} of {self.num_frames} could not be decoded ({len(missing)} missing; "
                f"{self._errors.rejected_packets} packets rejected by the decoder); the file is corrupt or truncated",
            )
        sizes = list(dict.fromkeys(found[i][0] for i in indices))
        if len(sizes) > 1:  # a stream whose resolution changes (e.g. cut from adaptive streaming)
            (height, width), (other_h, other_w) = sizes[0], sizes[1]
            raise VideoDecodeError(
                self.path,
                f"its frame size changes mid-stream ({width}x{height}, then {other_w}x{other_h}); re-encode it at "
                f"one size, e.g. ffmpeg -i {shlex.quote(self.path)} -vf scale={width}:{height} fixed.mp4",
            )
        return torch.stack([found[i][1] for i in indices])

    def _correct_index(self) -> None:
        self.index = self._exact_index()
        self._cache.put(self._key, self.index)
        self._check_frames()
        self._cursor = None

    def _read(self, indices: Sequence[int], short_side: int | None) -> dict[int, Picture]:
        found: dict[int, Picture] = {}
        try:
            for run in split_runs(indices):
                if self.index.pts is None:
                    self._read_in_decode_order(run, found, short_side)
                else:
                    self._read_by_timestamp(run, found, short_side)
        except av.FFmpegError as err:  # seeking or opening failed outright
            raise VideoDecodeError(self.path, f"decoding failed ({err})") from err
        return found

    def _picture(self, frame: av.VideoFrame, short_side: int | None) -> Picture:
        self._check_size(frame.width, frame.height)
        pixels = torch.from_numpy(to_rgb(frame))
        size = (pixels.shape[0], pixels.shape[1])
        if short_side is not None:
            try:
                pixels = resize_frame(pixels, short_side)
            except LimitError as err:  # a strip too narrow to scale up
                raise LimitError(f"{self.path}: {err}") from None
        return size, pixels

    def _read_by_timestamp(self, run: list[int], found: dict[int, Picture], short_side: int | None) -> None:
        pts = self.index.pts
        first, last = int(pts[run[0]]), int(pts[run[-1]])
        wanted = {int(pts[i]): i for i in run}
        for target in [*self.index.seek_targets(first), None]:
            got: dict[int, Picture] = {}
            for frame in self._frames_from(target):
                if frame.pts is None:
                    continue
                if not got and frame.pts > first:
                    break  # landed past the run: seek further back
                if frame.pts in wanted:
                    got[wanted[frame.pts]] = self._picture(frame, short_side)
                if frame.pts >= last:
                    break
            found.update(got)
            if len(got) == len(wanted):
                return

    def _frames_from(self, target: int | None) -> Iterator[av.VideoFrame]:
        """Frames from the keyframe at or before ``target`` (None: from the start of the file)."""
        self._cursor = None
        if target is None:
            self._open()
        else:
            try:
                self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            except av.FFmpegError:
                return iter(())
        return decoded_frames(self._container, self._stream, self._errors)

    def _read_in_decode_order(self, run: list[int], found: dict[int, Picture], short_side: int | None) -> None:
        if self._cursor is None or self._cursor[0] > run[0]:
            self._cursor = (0, self._frames_from(None))
        position, frames = self._cursor
        wanted = set(run)
        for frame in frames:
            if position in wanted:
                found[position] = self._picture(frame, short_side)
            position += 1
            if position > run[-1]:
                break
        self._cursor = (position, frames)

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


@register_backend("pyav")
def open_pyav(path: str, **kwargs: object) -> VideoReader:
    """Open with PyAV (the default backend)."""
    return PyAVReader(path, **kwargs)  # type: ignore[arg-type]
