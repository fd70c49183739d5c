"""Upload limits: every refusal is a LimitError or DataError whose line says what was wrong and what to do."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nlzoo.app.limits import Limits, check_image, check_upload, check_video
from nlzoo.data.image_dataset import IMAGE_EXTENSIONS
from nlzoo.data.video_sources import VIDEO_EXTENSIONS
from nlzoo.errors import DataError, ImageDecodeError, LimitError, VideoDecodeError
from tests.cli.tiny import write_videos

_MB = 1024 * 1024


@settings(max_examples=60, deadline=None)
@given(
    stem=st.text(string.ascii_letters + string.digits + "_-. ", min_size=1, max_size=12),
    suffix=st.text(string.ascii_letters + string.digits, max_size=5),
    size=st.integers(0, 3000),
)
def test_type_then_size_decide(tmp_path_factory: pytest.TempPathFactory, stem: str, suffix: str, size: int) -> None:
    path = tmp_path_factory.mktemp("upload") / f"{stem.strip() or 'f'}.{suffix}"
    path.write_bytes(bytes(size))
    limits = Limits(max_file_mb=2000 / _MB)
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTENSIONS and ext not in IMAGE_EXTENSIONS:
        with pytest.raises(DataError, match=r"unsupported file type .*; upload one of: \.mp4 .* \.jpg"):
            check_upload(path, kinds=("video", "image"), limits=limits)
    elif size > 2000:
        with pytest.raises(LimitError, match=r"MB; the limit is .* MB: upload a shorter or more compressed file"):
            check_upload(path, kinds=("video", "image"), limits=limits)
    else:
        assert check_upload(path, kinds=("video", "image"), limits=limits) == (
            "video" if ext in VIDEO_EXTENSIONS else "image"
        )


def test_a_kind_the_tab_does_not_take_is_refused(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"a.png: unsupported file type '.png'; upload one of: .mp4 .avi"):
        check_upload(tmp_path / "a.png", kinds=("video",), limits=Limits())


def test_video_length_comes_from_the_container(tmp_path) -> None:
    video = write_videos(tmp_path / "data", count=1)[0]  # 16 frames at 8 fps
    assert check_video(video, Limits(max_video_seconds=2.0)) == pytest.approx(2.0, abs=0.2)
    with pytest.raises(LimitError, match=r"00000.mp4 is 2.0 s long; the limit is 1.5 s: upload a shorter clip"):
        check_video(video, Limits(max_video_seconds=1.5))
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match="not a video FFmpeg can read"):
        check_video(tmp_path / "junk.mp4", Limits())


@pytest.mark.parametrize(("size", "allowed"), [((100, 50), True), ((101, 50), False)])
def test_image_pixels_are_read_from_the_header(tmp_path, size: tuple[int, int], allowed: bool) -> None:
    Image.new("RGB", size).save(tmp_path / "x.png")
    limits = Limits(max_image_pixels=5000)
    if allowed:
        assert check_image(tmp_path / "x.png", limits) == size
    else:
        with pytest.raises(LimitError, match=r"x.png is 101x50 = 0.0 megapixels; the limit is 0.0: upload a smaller"):
            check_image(tmp_path / "x.png", limits)
    (tmp_path / "x.jpg").write_text("text")
    with pytest.raises(ImageDecodeError, match="x.jpg: not an image Pillow can read"):
        check_image(tmp_path / "x.jpg", limits)


def test_limits_must_be_positive() -> None:
    with pytest.raises(LimitError, match="limits must be positive"):
        Limits(max_file_mb=0)
