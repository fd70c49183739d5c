"""Every awkward file of the corpus is read frame-exactly: frame k is the k-th frame of a plain sequential decode.

The corpus (tests/data/video_corpus.py) covers what real files do: start offsets, raw streams without a
container, B-frames with timestamps out of order, zero-size drop frames, Theora repeat packets, VP8/VP9,
variable frame rate + edit list + rotation, audio first, packets the decoder rejects.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlzoo.cli import main
from nlzoo.data import MultiViewVideoDataset, VideoClipDataset, VideoItem
from nlzoo.data.video_index import INDEX_CACHE, IndexCache
from nlzoo.data.video_io import open_video, read_frames
from nlzoo.data.video_pyav import PyAVReader
from nlzoo.data.video_torchcodec import torchcodec_unavailable
from nlzoo.data.video_transforms import resize_short_side, to_tchw
from nlzoo.errors import InputNotFoundError, VideoDecodeError
from nlzoo.inference.inputs import read_video_views
from tests.cli.tiny import TINY_DATA, write_model

from .video_corpus import CORPUS, FRAMES, ROTATION, damaged_mjpeg, sequential_decode
from .video_files import frame_number


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[np.ndarray]]]:
    """name -> (file, the frames of a sequential decode turned as the display matrix says)."""
    folder = tmp_path_factory.mktemp("corpus")
    files = {name: build(folder) for name, build in CORPUS.items()}
    return {
        name: (path, [np.rot90(f, ROTATION.get(name, 0)) for f in sequential_decode(path)])
        for name, path in files.items()
    }


NAMES = sorted(CORPUS)


@pytest.mark.parametrize("name", NAMES)
def test_frame_count_is_what_a_sequential_decode_yields(corpus, name: str) -> None:
    path, reference = corpus[name]
    INDEX_CACHE.clear()
    frames, indices = read_frames(path, lambda n: range(n))
    assert len(indices) == len(reference)
    assert all(np.array_equal(a, b) for a, b in zip(frames.numpy(), reference, strict=True))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_frame_k_is_the_kth_frame_of_a_sequential_decode(corpus, name: str, data: st.DataObject) -> None:
    path, reference = corpus[name]
    if name.startswith("damaged"):
        # A packet the decoder rejects is found by the first read that decodes it (which then rebuilds the
        # index by decoding); the packet scan alone cannot know. Make sure it is known, as exact=True does.
        open_video(path, exact=True).close()
    wanted = data.draw(st.lists(st.integers(0, len(reference) - 1), min_size=1, max_size=6))
    frames, indices = read_frames(path, lambda n: wanted)
    assert indices == wanted
    for frame, k in zip(frames.numpy(), wanted, strict=True):
        assert np.array_equal(frame, reference[k]), f"{name}: frame {k} differs from the sequential decode"


def test_the_corpus_really_is_awkward(corpus) -> None:
    """Each file misleads the way its real-world counterpart does, so the tests above mean something."""

    def header(name: str) -> tuple[int, int | None, int]:
        """(frames, start_time, stream index) as the container's header states them."""
        with av.open(str(corpus[name][0])) as container:
            stream = container.streams.video[0]
            return stream.frames, stream.start_time, stream.index

    assert header("mjpeg_drops")[0] > FRAMES  # drop frames counted by the AVI index
    assert header("phone_mp4")[0] == FRAMES and len(corpus["phone_mp4"][1]) == FRAMES - 1  # edit list cut
    assert header("mpeg2_ps")[1] > 0  # starts at 0.54 s
    assert header("audio_first")[2] == 1
    with av.open(str(corpus["audio_first"][0])) as container:
        assert [s.type for s in container.streams] == ["audio", "video", "subtitle"]
    assert len(corpus["damaged_mjpeg"][1]) == FRAMES - 2 and len(corpus["damaged_vp8"][1]) < FRAMES
    assert corpus["phone_mp4"][1][0].shape == (64, 48, 3)  # stored 64 x 48, shown turned
    ogg = corpus["theora_ogg"][0].read_bytes()
    assert b"\x00" in {ogg[i + 27 : i + 27 + ogg[i + 26]][-1:] for i in _ogg_pages(ogg)}  # empty packets


def _ogg_pages(data: bytes) -> list[int]:
    starts, at = [], 0
    while at < len(data):
        starts.append(at)
        count = data[at + 26]
        at += 27 + count + sum(data[at + 27 : at + 27 + count])
    return starts


def test_rotation_turns_frames_the_way_players_show_them(corpus) -> None:
    path, _ = corpus["phone_mp4"]
    with open_video(path) as reader:
        frame = reader.get_frames([3])[0]
    assert frame.shape == (64, 48, 3)
    # 90 degrees counter-clockwise: the white left-edge marker is now along the bottom.
    assert frame[-3:, :, 0].float().mean() > 200 and frame[:3, :, 0].float().mean() < 60
    assert frame_number(frame.permute(1, 0, 2).flip(1)) == 3


def test_fps_is_the_average_over_real_timestamps(corpus) -> None:
    with open_video(corpus["mpeg2_ps"][0]) as reader:
        assert reader.fps == pytest.approx(25.0)
    with open_video(corpus["mjpeg_drops"][0]) as reader:  # 30 frames over 50 ticks of 1/25 s
        assert reader.fps == pytest.approx(29 / (50 / 25))


def test_rejected_packets_are_skipped_and_counted(tmp_path: Path) -> None:
    path = damaged_mjpeg(tmp_path)
    asked = []
    frames, _ = read_frames(path, lambda n: asked.append(n) or range(n))
    assert asked == [FRAMES, FRAMES - 2]  # the packet scan counted 30; decoding them found 2 refused
    assert [frame_number(f) for f in frames] == [i for i in range(FRAMES) if i not in (7, 19)]
    with open_video(path) as reader:
        assert reader.index.exact and reader.index.rejected_packets == 2 and reader.num_frames == FRAMES - 2


def test_datasets_and_predict_video_read_every_file(corpus, tmp_path: Path, capsys) -> None:
    items = [VideoItem(str(corpus[name][0]), (0,)) for name in NAMES]
    train = VideoClipDataset(items, config=TINY_DATA, num_classes=2)
    views = MultiViewVideoDataset(items, config=TINY_DATA, num_clips=2, num_crops=1, num_classes=2)
    for i in range(len(items)):
        assert train[(i, 0)]["skipped"] == 0 and train[(i, 0)]["video"].shape == (3, 4, 32, 32)
        assert views[i]["skipped"] == 0 and views[i]["video"].shape == (2, 3, 4, 32, 32)
    folder = tmp_path / "model"
    write_model(folder)
    argv = ["predict-video", str(corpus["mpeg1_es"][0]), "--model", str(folder), "--views", "2x1", "--device", "cpu"]
    assert main(argv) == 0
    assert "same_colour" in capsys.readouterr().out
    assert read_video_views(corpus["mpeg2_ps"][0], TINY_DATA, num_clips=3, num_crops=1).shape == (3, 3, 4, 32, 32)


def _no_frames(folder: Path) -> Path:
    """An AVI whose every MJPEG packet is garbage: a video stream, but nothing decodes."""
    path = damaged_mjpeg(folder)
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        payloads = [bytes(p) for p in container.demux(video=0) if p.size]
    for payload in payloads:
        at = data.find(payload)
        data[at : at + len(payload)] = bytes(len(payload))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda d: d / "missing.avi", InputNotFoundError, "no such video file"),
        (lambda d: d, InputNotFoundError, "is a directory, not a video file"),
        (lambda d: _write(d / "notes.mp4", b"just some text\n" * 40), VideoDecodeError, "not a video FFmpeg can open"),
        (_no_frames, VideoDecodeError, "no decodable video frames; the decoder rejected 30 packets"),
    ],
)
def test_bad_inputs_are_one_clear_line(tmp_path: Path, make, error, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(error, match=message) as info:
        read_frames(path, lambda n: [0])
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    dataset = MultiViewVideoDataset(
        [VideoItem(str(path), (0,))], config=TINY_DATA, num_clips=1, num_crops=1, num_classes=2
    )
    with pytest.warns(UserWarning, match="skipping video"):
        sample = dataset[0]
    assert sample["skipped"] == 1 and sample["skipped_videos"] == [str(info.value)]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


TORCHCODEC_PROBLEM = torchcodec_unavailable()


@pytest.mark.skipif(TORCHCODEC_PROBLEM is not None, reason=f"torchcodec backend not testable: {TORCHCODEC_PROBLEM}")
@pytest.mark.parametrize("name", NAMES)
def test_torchcodec_returns_the_same_frames_as_pyav(corpus, name: str) -> None:
    path, reference = corpus[name]
    if name.startswith("damaged"):  # torchcodec does not report refused packets: start from the corrected index
        open_video(path, exact=True).close()
    n = len(reference)
    # Single frames open a fresh decoder and seek; a read ending at the last frame falls back to PyAV.
    for wanted in (sorted({0, n // 3, n // 2, n - 2, n - 1}), [n // 3], [n // 2 + 1], [n - 2]):
        frames, _ = read_frames(path, lambda _, w=wanted: w, backend="torchcodec")
        pyav, _ = read_frames(path, lambda _, w=wanted: w)
        assert torch.equal(frames, pyav), f"{name}: torchcodec and PyAV disagree on frames {wanted}"
    with open_video(path, backend="torchcodec") as reader:
        uses_torchcodec = reader._decoder is not None
    assert uses_torchcodec == (name in TORCHCODEC_DECODES), name


# Containers with stored timestamps, where torchcodec itself decodes (the rest is read by PyAV).
TORCHCODEC_DECODES = {"phone_mp4", "audio_first", "vp8_webm", "vp9_webm", "damaged_vp8"}


def test_exact_indices_are_kept_on_disk_and_never_trusted_blindly(corpus, tmp_path: Path, monkeypatch) -> None:
    path, reference = corpus["mpeg1_es"]  # no timestamps: only a decode scan can index it
    with PyAVReader(str(path), cache=IndexCache(folder=tmp_path)) as reader:
        assert reader.index.exact and reader.num_frames == len(reference)
    (saved,) = tmp_path.glob("*.npz")

    def no_decoding(*args: object) -> None:
        raise AssertionError("the saved index should have been used")

    monkeypatch.setattr("nlzoo.data.video_pyav.scan_frames", no_decoding)
    with PyAVReader(str(path), cache=IndexCache(folder=tmp_path)) as reader:  # a new process, in effect
        assert reader.num_frames == len(reference)
        assert np.array_equal(reader.get_frames([5])[0].numpy(), reference[5])
    monkeypatch.undo()
    saved.write_bytes(b"not an index")  # unreadable: rebuilt, not trusted
    with PyAVReader(str(path), cache=IndexCache(folder=tmp_path)) as reader:
        assert reader.num_frames == len(reference)


BACKENDS = ["pyav", "torchcodec"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_frames_resized_as_they_are_decoded_equal_the_transforms_resize(
    corpus, name: str, backend: str, data: st.DataObject
) -> None:
    """Readers scale each frame right after decoding it (so a 4K clip never sits in memory at full size); the
    pixels must be exactly those of the clip transforms' resize of the full-size frames, with any number of
    decoder threads."""
    if backend == "torchcodec" and TORCHCODEC_PROBLEM is not None:
        pytest.skip(f"torchcodec backend not testable: {TORCHCODEC_PROBLEM}")
    path, reference = corpus[name]
    if name.startswith("damaged"):
        open_video(path, exact=True).close()
    wanted = data.draw(st.lists(st.integers(0, len(reference) - 1), min_size=1, max_size=5))
    short_side = data.draw(st.integers(8, 120))  # down- and upscaling
    threads = data.draw(st.sampled_from([1, 2, 0]))  # decoder threads change no pixel
    frames, _ = read_frames(path, lambda n: wanted, backend=backend, short_side=short_side, threads=threads)
    full = torch.from_numpy(np.stack([reference[k] for k in wanted]))
    expected = resize_short_side(to_tchw(full), short_side).permute(0, 2, 3, 1)
    assert frames.shape == expected.shape and torch.equal(frames, expected), name
