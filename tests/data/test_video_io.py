from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from nlzoo.data import VideoDecodeError, list_backends, open_video, register_backend
from nlzoo.data.video_io import read_frames
from nlzoo.data.video_reader import split_runs
from nlzoo.errors import InputNotFoundError, LimitError, UnknownNameError

from .video_files import broken_videos, frame_number, write_numbered_video


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_numbered_video(tmp_path_factory.mktemp("io") / "numbered.mp4", 120)


@pytest.mark.parametrize(
    "indices",
    [
        [0, 1, 2, 3],
        [37, 45, 53, 61],  # a strided clip starting mid-GOP
        [119, 0, 64, 64, 5],  # any order, repeats, far apart (several seeks)
        list(range(100, 120)),  # the tail, B-frames and the final flush included
    ],
)
def test_reads_exactly_the_requested_frames(mp4: Path, indices: list[int]) -> None:
    with open_video(mp4) as reader:
        frames = reader.get_frames(indices)
    assert frames.shape == (len(indices), 48, 64, 3)
    assert [frame_number(f) for f in frames] == indices


def test_metadata(mp4: Path) -> None:
    with open_video(mp4) as reader:
        assert reader.num_frames == 120
        assert reader.fps == pytest.approx(25.0)


def test_container_without_frame_count_uses_duration(tmp_path: Path) -> None:
    mkv = write_numbered_video(tmp_path / "numbered.mkv", 40)  # Matroska stores no frame count
    with open_video(mkv) as reader:
        assert reader.num_frames == 40
        assert [frame_number(f) for f in reader.get_frames([39, 17, 3])] == [39, 17, 3]


def test_reader_reuse_across_calls(mp4: Path) -> None:
    with open_video(mp4) as reader:
        for start in (90, 10, 50):
            assert [frame_number(f) for f in reader.get_frames([start, start + 8])] == [start, start + 8]


def test_out_of_range_index_is_an_error(mp4: Path) -> None:
    with open_video(mp4) as reader, pytest.raises(VideoDecodeError, match=r"outside 0\.\.119"):
        reader.get_frames([5, 120])


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated"])
def test_unreadable_files_raise_decode_error_naming_the_path(mp4: Path, tmp_path: Path, kind: str) -> None:
    path = broken_videos(tmp_path, mp4)[kind]
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path, lambda n: range(n))
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_missing_path_and_directory_are_input_not_found(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="no such video file; check the path"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(InputNotFoundError, match="is a directory, not a video file"):
        open_video(tmp_path)


def test_split_runs_cuts_at_large_gaps() -> None:
    assert split_runs([9, 1, 2, 2, 60, 40], gap=30) == [[1, 2, 9], [40, 60]]
    assert split_runs([0, 100], gap=30) == [[0], [100]]


def test_backend_registry() -> None:
    assert "pyav" in list_backends()
    with pytest.raises(UnknownNameError, match="unknown video backend .decord."):
        open_video("x.mp4", backend="decord")
    with pytest.raises(ValueError, match="already registered"):
        register_backend("pyav")(lambda path: None)


def _segment(path: Path, size: tuple[int, int], frames: int = 12) -> bytes:
    """An MPEG-TS segment of ``frames`` H.264 frames at ``size`` (width, height)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for k in range(frames):
            image = np.full((size[1], size[0], 3), 10 * k, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path.read_bytes()


def test_a_resolution_change_mid_stream_is_one_clear_error_whose_advice_works(tmp_path: Path) -> None:
    """Segments cut from adaptive streaming switch sizes; frames of two sizes cannot make one clip."""
    import shlex
    import shutil
    import subprocess

    video = tmp_path / "switch.ts"
    video.write_bytes(_segment(tmp_path / "a.ts", (96, 64)) + _segment(tmp_path / "b.ts", (48, 32)))
    with pytest.raises(VideoDecodeError, match=r"frame size changes mid-stream \(96x64, then 48x32\)") as caught:
        read_frames(video, lambda n: [0, n - 1])
    assert read_frames(video, lambda n: [0, 1])[0].shape == (2, 64, 96, 3)  # frames of one size still read
    if shutil.which("ffmpeg") is None:
        pytest.skip("following the advice needs the ffmpeg program (make test installs it)")
    program, *arguments = shlex.split(str(caught.value).split("e.g. ", 1)[1])
    subprocess.run([program, "-v", "error", *arguments], cwd=tmp_path, check=True)
    frames, indices = read_frames(tmp_path / "fixed.mp4", lambda n: range(n))
    assert frames.shape == (24, 64, 96, 3) and len(indices) == 24


def test_frames_over_the_pixel_limit_are_refused_before_decoding_and_raising_the_limit_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = write_numbered_video(tmp_path / "big.mp4", 10)  # 64x48 = 3,072 pixels
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "3071")
    message = rf"{video}: its 64x48 frames have 3,072 pixels, over the limit of 3,071.*NLZOO_MAX_IMAGE_PIXELS"
    with pytest.raises(LimitError, match=message) as refused:
        open_video(video)
    if shutil.which("ffmpeg") is not None:  # the first advice: scale it down (make test installs ffmpeg)
        program, *arguments = shlex.split(str(refused.value).split("e.g. ", 1)[1].split(", or set")[0])
        subprocess.run([program, "-v", "error", *arguments], cwd=tmp_path, check=True)
        assert read_frames(tmp_path / "smaller.mp4", lambda n: [0])[0].shape == (1, 46, 62, 3)
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "3072")  # the second: raise the limit
    assert read_frames(video, lambda n: [0, n - 1])[0].shape == (2, 48, 64, 3)


def test_a_frame_larger_than_the_header_said_is_refused_before_its_rgb_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = tmp_path / "grows.ts"  # the header describes the first segment's 48x32 frames
    video.write_bytes(_segment(tmp_path / "a.ts", (48, 32)) + _segment(tmp_path / "b.ts", (96, 64)))
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", str(48 * 32))
    assert read_frames(video, lambda n: [0, 1])[0].shape == (2, 32, 48, 3)
    with pytest.raises(LimitError, match=r"grows.ts: its 96x64 frames have 6,144 pixels, over the limit of 1,536"):
        read_frames(video, lambda n: [n - 1])


@pytest.mark.parametrize("exact", [False, True])  # the packet scan, and the decoding scan
def test_a_frame_count_over_the_limit_stops_the_scan_and_raising_the_limit_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exact: bool
) -> None:
    video = write_numbered_video(tmp_path / f"long-{exact}.mp4", 40)
    monkeypatch.setenv("NLZOO_MAX_VIDEO_FRAMES", "39")
    with pytest.raises(LimitError, match=rf"{video}: more than 39 frames, over the limit.*NLZOO_MAX_VIDEO_FRAMES"):
        open_video(video, exact=exact)
    monkeypatch.setenv("NLZOO_MAX_VIDEO_FRAMES", "40")  # the advice
    with open_video(video, exact=exact) as reader:
        assert reader.num_frames == 40


def test_a_strip_too_narrow_to_resize_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = write_numbered_video(tmp_path / "strip.mp4", 4, size=(2, 64))
    monkeypatch.setenv("NLZOO_MAX_IMAGE_PIXELS", "100000")
    with pytest.raises(LimitError, match=rf"{video}: a 64x2 picture resized to 8192x256 \(crop a strip this narrow"):
        read_frames(video, lambda n: [0], short_side=256)
    assert read_frames(video, lambda n: [0], short_side=16)[0].shape == (1, 16, 512, 3)


def test_reading_no_frames_or_to_no_size_is_a_config_error(mp4: Path) -> None:
    from nlzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="the frame picker chose none of 120"):
        read_frames(mp4, lambda n: [])
    with pytest.raises(ConfigError, match="short_side must be >= 1"):
        read_frames(mp4, lambda n: [0], short_side=0)
