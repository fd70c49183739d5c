"""Reading video: open a file with a registered backend and read chosen frames by index.

Every consumer (data modules, ``predict-video``, ``explain``) goes through :func:`read_frames`, so they all
get the same frames: frame ``k`` is the ``k``-th decodable frame in presentation order, found from the file's
real timestamps (:mod:`.video_index`), rotation applied. PyAV is the default backend (its wheels bundle
FFmpeg); ``"torchcodec"`` works where torchcodec and the FFmpeg libraries it loads are installed. Another
decoder plugs in with :func:`register_backend`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import ConfigError, VideoDecodeError
from . import video_pyav, video_torchcodec  # noqa: F401  (register the backends)
from .video_reader import IndexCorrected, VideoReader, backend_opener, check_video_path, list_backends, register_backend

__all__ = [
    "VideoDecodeError",
    "VideoReader",
    "check_video_path",
    "list_backends",
    "open_video",
    "read_frames",
    "register_backend",
]


def open_video(path: str | os.PathLike[str], *, backend: str = "pyav", **options: Any) -> VideoReader:
    """Open ``path`` with a registered backend.

    Raises:
        UnknownNameError: unknown backend.
        InputNotFoundError: nothing at ``path``, or a directory.
        VideoDecodeError: not a video, or no decodable video frames.
        LimitError: more frames than ``NLZOO_MAX_VIDEO_FRAMES``, or frames larger than ``NLZOO_MAX_IMAGE_PIXELS``.
    """
    opener = backend_opener(backend)
    return opener(check_video_path(path), **options)


def read_frames(
    path: str | os.PathLike[str],
    pick: Callable[[int], Sequence[int]],
    *,
    backend: str = "pyav",
    short_side: int | None = None,
    threads: int = 1,
) -> tuple[torch.Tensor, list[int]]:
    """Frames ``pick(num_frames)`` of a video: ((N, H, W, 3) uint8 RGB, the indices read), each scaled to
    ``short_side`` as it is decoded when that is given (see :meth:`VideoReader.get_frames`).

    ``threads``: decoder threads; 1 suits DataLoader workers (a process each), 0 (one per core) a single
    reader such as ``predict-video``.

    ``pick`` sees the true frame count; if reading shows the packet scan's count was wrong, it is asked again
    with the corrected one.

    Raises:
        InputNotFoundError: nothing at ``path``, or a directory.
        VideoDecodeError: not a video, or the frames cannot be produced.
        LimitError: more frames than ``NLZOO_MAX_VIDEO_FRAMES``, or frames larger than ``NLZOO_MAX_IMAGE_PIXELS``.
        ConfigError: ``pick`` chose no frame, or ``short_side`` < 1.
    """
    if short_side is not None and short_side < 1:
        raise ConfigError(f"short_side must be >= 1 (pixels); got {short_side}")
    with open_video(path, backend=backend, threads=threads) as reader:
        indices = list(pick(reader.num_frames))
        if not indices:
            raise ConfigError(f"no frames to read from {path}: the frame picker chose none of {reader.num_frames}")
        try:
            return reader.get_frames(indices, short_side=short_side), indices
        except IndexCorrected:
            indices = list(pick(reader.num_frames))
            return reader.get_frames(indices, short_side=short_side), indices
