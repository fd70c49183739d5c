"""What the page accepts: file types, file size, video length and image pixels, checked before any decoding.

Every refusal is a :class:`~nlzoo.errors.LimitError` (too big or too long) or a :class:`~nlzoo.errors.DataError`
(not a file the page can use) whose message says what was wrong and what to do; the page shows it as is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..data.image_dataset import IMAGE_EXTENSIONS
from ..data.video_sources import VIDEO_EXTENSIONS
from ..errors import DataError, ImageDecodeError, LimitError, VideoDecodeError

_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one request may bring (defaults suit a CPU Space).

    Attributes:
        max_file_mb: size of an uploaded file, in MiB.
        max_video_seconds: length of a video, from its container's duration.
        max_image_pixels: width x height of an image, read from its header before decoding.
    """

    max_file_mb: float = 50.0
    max_video_seconds: float = 60.0
    max_image_pixels: int = 4096 * 4096

    def __post_init__(self) -> None:
        if self.max_file_mb <= 0 or self.max_video_seconds <= 0 or self.max_image_pixels <= 0:
            raise LimitError(f"limits must be positive; got {self}")

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * _MB)


def check_upload(path: str | os.PathLike[str], *, kinds: tuple[str, ...], limits: Limits) -> str:
    """The kind of an uploaded file (``"video"`` or ``"image"``, one of ``kinds``), after its type and size.

    Raises:
        DataError: a type the page does not take (the message lists the accepted extensions).
        LimitError: the file is larger than ``limits.max_file_mb``.
    """
    suffix = Path(path).suffix.lower()
    accepted = {"video": VIDEO_EXTENSIONS, "image": IMAGE_EXTENSIONS}
    kind = next((k for k in kinds if suffix in accepted[k]), None)
    if kind is None:
        allowed = " ".join(ext for k in kinds for ext in accepted[k])
        raise DataError(f"{Path(path).name}: unsupported file type {suffix or '(none)'!r}; upload one of: {allowed}")
    size = os.path.getsize(path)
    if size > limits.max_file_bytes:
        raise LimitError(
            f"{Path(path).name} is {size / _MB:.1f} MB; the limit is {limits.max_file_mb:g} MB: "
            "upload a shorter or more compressed file"
        )
    return kind


def check_video(path: str | os.PathLike[str], limits: Limits) -> float:
    """The video's duration in seconds, after checking it against ``limits.max_video_seconds``.

    Raises:
        VideoDecodeError: FFmpeg cannot open it, it has no video stream, or its length is unknown.
        LimitError: longer than the limit.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream")
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                raise VideoDecodeError(
                    path, "its length is unknown; re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
                )
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoDecodeError(path, f"not a video FFmpeg can read ({err})") from None
    if seconds > limits.max_video_seconds:
        raise LimitError(
            f"{Path(path).name} is {seconds:.1f} s long; the limit is {limits.max_video_seconds:g} s: "
            "upload a shorter clip"
        )
    return seconds


def check_image(path: str | os.PathLike[str], limits: Limits) -> tuple[int, int]:
    """The image's (width, height), read from its header and checked against ``limits.max_image_pixels``.

    Raises:
        ImageDecodeError: Pillow cannot read it.
        LimitError: more pixels than the limit.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageDecodeError(f"{Path(path).name}: not an image Pillow can read ({err})") from None
    if width * height > limits.max_image_pixels:
        raise LimitError(
            f"{Path(path).name} is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
            f"{limits.max_image_pixels / 1e6:.1f}: upload a smaller image"
        )
    return width, height
