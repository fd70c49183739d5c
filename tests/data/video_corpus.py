"""Awkward real-world video files, generated: one per way a header lies or a stream misbehaves.

Written with PyAV where it can encode the codec; Theora and the subtitle stream need the Debian ``ffmpeg``
program (PyAV's wheels have no Theora encoder; ``make test`` installs ffmpeg when missing). Packed-bitstream
XviD/DivX AVIs (P and B frames in one packet) cannot be produced: no encoder in FFmpeg writes them (libxvid's
wrapper has no ``packed`` option); the MPEG-4 Part 2 AVI here has ordinary B-frames and timestamps out of
order instead.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .video_files import numbered_frame

FRAMES = 30


def _encode(
    path: Path,
    codec: str,
    *,
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 25),
    pix_fmt: str = "yuv420p",
    audio_first: bool = False,
    rotation: int = 0,
) -> Path:
    """Numbered frames (see :func:`numbered_frame`) at timestamps ``pts`` (default 0, 1, 2...)."""
    pts = pts or list(range(FRAMES))
    with av.open(str(path), "w", format=fmt) as container:
        audio = container.add_stream("mp2", rate=16000) if audio_first else None
        stream = container.add_stream(codec, rate=25, options=options or {})
        stream.height, stream.width, stream.pix_fmt = 48, 64, pix_fmt
        stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        if audio is not None:
            samples = np.zeros((1, 16000 * len(pts) // 25), np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, 0
            container.mux(audio.encode(frame))
            container.mux(audio.encode())
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(numbered_frame(i), format="rgb24")
            frame.pts, frame.time_base = t, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def mpeg2_program_stream(folder: Path) -> Path:
    """MPEG-2 in an MPEG-PS (.mpg) with B-frames: the video starts at 0.54 s, the header has no frame count."""
    return _encode(folder / "mpeg2.mpg", "mpeg2video", fmt="vob", options={"g": "8", "bf": "2"})


def mpeg1_elementary_stream(folder: Path) -> Path:
    """A raw MPEG-1 video stream (.mpv): no container, timestamps guessed by the parser."""
    return _encode(folder / "mpeg1.mpv", "mpeg1video", fmt="mpeg1video", options={"g": "8", "bf": "2"})


def mpeg4_avi(folder: Path) -> Path:
    """MPEG-4 Part 2 (DivX/XviD family) in AVI with B-frames: packet timestamps go back and forth."""
    return _encode(folder / "mpeg4.avi", "mpeg4", options={"g": "8", "bf": "2"})


def mjpeg_drop_frames(folder: Path) -> Path:
    """MJPEG AVI whose index lists zero-size drop frames (gaps in the timestamps): the header overcounts."""
    return _encode(folder / "mjpeg.avi", "mjpeg", pts=[i + (i // 4) * 3 for i in range(FRAMES)], pix_fmt="yuvj420p")


def h264_avi(folder: Path) -> Path:
    """H.264 with B-frames in AVI: the first frame's timestamp is 1 tick while the stream starts at 0."""
    return _encode(folder / "h264.avi", "libx264", options={"g": "8", "bf": "2"})


def vp8_webm(folder: Path) -> Path:
    return _encode(folder / "vp8.webm", "libvpx", time_base=Fraction(1, 1000), pts=[40 * i for i in range(FRAMES)])


def vp9_webm(folder: Path) -> Path:
    return _encode(folder / "vp9.webm", "libvpx-vp9", time_base=Fraction(1, 1000), pts=[40 * i for i in range(FRAMES)])


def phone_mp4(folder: Path) -> Path:
    """A phone-like H.264 MP4: B-frames, variable frame rate from 185 ms, a 90 degree display rotation, and an
    edit list cut one frame short (so the last packet is discarded; the header still counts it)."""
    gaps = [33 + (17 if i % 5 == 0 else 0) for i in range(FRAMES)]
    pts = [185 + sum(gaps[:i]) for i in range(FRAMES)]
    path = _encode(
        folder / "phone.mp4",
        "libx264",
        options={"g": "8", "bf": "2"},
        pts=pts,
        time_base=Fraction(1, 1000),
        rotation=90,
    )
    _shorten_edit_list(path, by_ms=gaps[-2])
    return path


def audio_first_mkv(folder: Path) -> Path:
    """Matroska whose first stream is audio (the video is stream 1), with a subtitle stream after it."""
    plain = _encode(folder / "audio_first_plain.mkv", "libx264", options={"g": "8", "bf": "2"}, audio_first=True)
    subtitles = folder / "subtitles.srt"
    subtitles.write_text("1\n00:00:00,100 --> 00:00:00,900\nhello\n\n2\n00:00:01,000 --> 00:00:01,100\nagain\n")
    path = folder / "audio_first.mkv"
    inputs = ["-i", str(plain), "-i", str(subtitles), "-map", "0", "-map", "1"]
    subprocess.run([_ffmpeg(), "-v", "error", "-y", *inputs, "-c", "copy", str(path)], check=True)
    return path


def _ffmpeg() -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the corpus needs the ffmpeg program (Theora, subtitles): apt-get install ffmpeg")
    return ffmpeg


def theora_ogg(folder: Path) -> Path:
    """Theora in Ogg with zero-length "repeat frame" packets, which FFmpeg's decoder rejects."""
    plain = folder / "theora_plain.ogv"
    numbered = folder / "numbered_for_theora.mkv"
    _encode(numbered, "ffv1", pix_fmt="yuv420p")
    subprocess.run(
        [_ffmpeg(), "-v", "error", "-y", "-i", str(numbered), "-c:v", "libtheora", "-g", "8", str(plain)], check=True
    )
    path = folder / "theora.ogv"
    path.write_bytes(_insert_empty_ogg_packets(plain.read_bytes(), pages=(6, 9)))
    return path


def damaged_mjpeg(folder: Path) -> Path:
    """MJPEG AVI with two packets overwritten by garbage: the decoder rejects them."""
    return _damage(_encode(folder / "damaged.avi", "mjpeg", pix_fmt="yuvj420p"), packets=(7, 19), keep=0)


def damaged_vp8(folder: Path) -> Path:
    """VP8 WebM with an inter frame's data corrupted part-way (a player shows artefacts until the next key)."""
    source = _encode(folder / "vp8_src.webm", "libvpx", options={"g": "10"})
    path = folder / "damaged.webm"
    shutil.copy(source, path)
    return _damage(path, packets=(13,), keep=3)


CORPUS: dict[str, Callable[[Path], Path]] = {
    "mpeg2_ps": mpeg2_program_stream,
    "mpeg1_es": mpeg1_elementary_stream,
    "mpeg4_avi": mpeg4_avi,
    "mjpeg_drops": mjpeg_drop_frames,
    "h264_avi": h264_avi,
    "vp8_webm": vp8_webm,
    "vp9_webm": vp9_webm,
    "phone_mp4": phone_mp4,
    "audio_first": audio_first_mkv,
    "theora_ogg": theora_ogg,
    "damaged_mjpeg": damaged_mjpeg,
    "damaged_vp8": damaged_vp8,
}
# Counter-clockwise quarter turns a player applies (display matrix).
ROTATION = {"phone_mp4": 1}


def sequential_decode(path: Path) -> list[np.ndarray]:
    """The reference: every frame of a plain decode from start to end, as a player shows them (no seeking).

    Packets the decoder rejects are skipped; zero-size packets carry no picture and are not sent.
    """
    frames = []
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams.video)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            try:
                frames.extend(f.to_ndarray(format="rgb24") for f in packet.decode())
            except av.FFmpegError:
                continue
        frames.extend(f.to_ndarray(format="rgb24") for f in stream.codec_context.decode(None))
    return frames


def _shorten_edit_list(path: Path, *, by_ms: int) -> None:
    """Cut the (last) edit of the video track's ``elst`` box by ``by_ms`` of movie time."""
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd")
    version = data[at + 4]
    timescale = struct.unpack(">I", data[at + 20 : at + 24] if version == 0 else data[at + 28 : at + 32])[0]
    at = data.find(b"elst")
    version, count = data[at + 4], struct.unpack(">I", data[at + 8 : at + 12])[0]
    size = 12 if version == 0 else 20
    entry = at + 12 + (count - 1) * size
    fmt = ">I" if version == 0 else ">Q"
    width = 4 if version == 0 else 8
    (duration,) = struct.unpack(fmt, data[entry : entry + width])
    data[entry : entry + width] = struct.pack(fmt, duration - by_ms * timescale // 1000)
    path.write_bytes(bytes(data))


def _damage(path: Path, *, packets: tuple[int, ...], keep: int) -> Path:
    """Overwrite the payload of the given video packets (after ``keep`` bytes) with random bytes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        payloads = [bytes(p) for p in container.demux(stream) if p.size]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for i in packets:
        pos, size = data.find(payloads[i]), len(payloads[i])
        data[pos + keep : pos + size] = rng.integers(0, 256, size - keep, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _insert_empty_ogg_packets(data: bytes, *, pages: tuple[int, ...]) -> bytes:
    """A zero-length packet after the first complete packet of each listed Ogg page (a Theora repeat frame)."""
    out, at, number = bytearray(), 0, 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS"
        count = data[at + 26]
        lacing = bytearray(data[at + 27 : at + 27 + count])
        body = data[at + 27 + count : at + 27 + count + sum(lacing)]
        header = bytearray(data[at : at + 27])
        end = next((i for i, v in enumerate(lacing) if v < 255), None)
        if number in pages and end is not None and count < 255:
            lacing.insert(end + 1, 0)
            header[26] = len(lacing)
        header[22:26] = b"\0\0\0\0"
        page = header + lacing + body
        page[22:26] = struct.pack("<I", _ogg_crc(bytes(page)))
        out += page
        at += 27 + count + len(body)
        number += 1
    return bytes(out)
