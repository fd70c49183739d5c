"""The decoder interface every backend implements, the backend registry, and the checks on a path.

Frame ``k`` of a video is the ``k``-th decodable frame in presentation order, whatever the container's header
claims (see :mod:`nlzoo.data.video_index`). Backends register ``open(path, *, threads=1) -> VideoReader`` by
name; frames come from ``VideoReader.get_frames(indices, *, short_side=None)``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch

from ..errors import InputNotFoundError, UnknownNameError, VideoDecodeError

# Frames between two wanted ones above which a reader seeks instead of decoding through the gap.
SEEK_GAP = 32


class VideoReader(ABC):
    """An open video whose frames are addressed by index 0..num_frames-1 (presentation order).

    Attributes:
        path: the file.
        num_frames: decodable frames (what a sequential decode of the whole file yields).
        fps: average frame rate over the frames' real timestamps.
        rejected_packets: packets the decoder refused so far (skipped, as players do).
    """

    path: str
    num_frames: int
    fps: float
    rejected_packets: int = 0

    @abstractmethod
    def get_frames(self, indices: Sequence[int], *, short_side: int | None = None) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as a (len(indices), H, W, 3) uint8 RGB tensor,
        turned the way a player shows them (rotation metadata applied).

        ``short_side`` scales each frame as soon as it is decoded so that its shorter side has that length
        (:func:`~nlzoo.data.video_transforms.resize_frame`, the clip transforms' own resize): the clips of a 4K
        video then take the memory of their small copies instead of gigabytes.

        Raises:
            VideoDecodeError: an index is out of range or a frame could not be produced.
            LimitError: a frame has more pixels than ``NLZOO_MAX_IMAGE_PIXELS``, or would after its resize.
            IndexCorrected: the packet-scan index proved wrong; it is now exact (re-pick the indices).
        """

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the file."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IndexCorrected(VideoDecodeError):
    """Raised by :meth:`VideoReader.get_frames` when decoding showed that the frame count from the packet scan
    was wrong; the reader now holds the exact index (``num_frames`` changed), so indices must be chosen again.
    :func:`~nlzoo.data.video_io.read_frames` does that."""

    def __init__(self, path: str, old: int, new: int) -> None:
        super().__init__(path, f"has {new} decodable frames, not the {old} its packets suggest; read it again")
        self.old, self.new = old, new

    def __reduce__(self):
        return type(self), (self.path, self.old, self.new)


VideoBackend = Callable[..., VideoReader]  # open(path, *, threads=1, ...)
_BACKENDS: dict[str, VideoBackend] = {}


def register_backend(name: str) -> Callable[[VideoBackend], VideoBackend]:
    """Register ``open(path, *, threads=1) -> VideoReader`` under ``name`` (a decorator); ``threads`` is the
    number of decoder threads (0: one per core)."""

    def decorator(opener: VideoBackend) -> VideoBackend:
        if name in _BACKENDS:
            raise ValueError(f"video backend {name!r} is already registered")
        _BACKENDS[name] = opener
        return opener

    return decorator


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def backend_opener(name: str) -> VideoBackend:
    """The opener registered as ``name``.

    Raises:
        UnknownNameError: no such backend (the message lists the registered ones).
    """
    if name not in _BACKENDS:
        raise UnknownNameError(f"unknown video backend {name!r}; available: {', '.join(list_backends())}")
    return _BACKENDS[name]


def check_video_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a string once it names an existing file.

    Raises:
        InputNotFoundError: nothing at ``path``, or a directory.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputNotFoundError(f"{path}: is a directory, not a video file; give the path of one video")
    if not os.path.isfile(path):
        raise InputNotFoundError(f"{path}: no such video file; check the path")
    return path


def split_runs(indices: Sequence[int], *, gap: int = SEEK_GAP) -> list[list[int]]:
    """Sorted unique ``indices`` cut into runs wherever two neighbours are more than ``gap`` frames apart."""
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and i - runs[-1][-1] <= gap:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
