"""``read_image``: RGB from any mode, bounded, and upright on request (EXIF orientation, as a viewer shows it)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nlzoo.data.image_dataset import read_image

# What a viewer shows for stored pixels s under each EXIF Orientation, from the tag's definition (which visual
# side the stored 0th row and 0th column become), written with numpy rather than Pillow's transposes.
DISPLAYED = {
    1: lambda s: s,
    2: lambda s: s[:, ::-1],  # 0th row top, 0th column right: mirrored left-right
    3: lambda s: s[::-1, ::-1],  # bottom, right: turned 180 degrees
    4: lambda s: s[::-1, :],  # bottom, left: mirrored top-bottom
    5: lambda s: s.transpose(1, 0, 2),  # left, top: the 0th row becomes the left column
    6: lambda s: np.rot90(s, k=-1),  # right, top: stored turned 90 degrees anticlockwise, shown clockwise
    7: lambda s: s.transpose(1, 0, 2)[::-1, ::-1],  # right, bottom: the anti-diagonal transpose
    8: lambda s: np.rot90(s, k=1),  # left, bottom
}


def _save(path: Path, pixels: np.ndarray, orientation: int | None, **kwargs) -> Path:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), **kwargs)
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    orientation=st.integers(1, 8),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    suffix=st.sampled_from([".png", ".webp"]),
)
def test_exif_orientation_shows_the_pixels_as_a_viewer_does(tmp_path, orientation, height, width, seed, suffix) -> None:
    stored = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    path = _save(tmp_path / f"photo{suffix}", stored, orientation, **kwargs)
    assert np.array_equal(
        np.asarray(read_image(str(path), apply_exif_orientation=True)), DISPLAYED[orientation](stored)
    )
    assert np.array_equal(np.asarray(read_image(str(path))), stored)  # datasets: the frame annotations use


def test_a_phone_jpeg_is_turned_upright(tmp_path) -> None:
    stored = np.zeros((40, 64, 3), dtype=np.uint8)
    stored[:, :8] = 255  # a white band on the stored left: the viewer's top for orientation 6
    path = _save(tmp_path / "portrait.jpg", stored, 6, quality=95)
    upright = np.asarray(read_image(str(path), apply_exif_orientation=True)).astype(int)
    assert upright.shape == (64, 40, 3)
    assert upright[:8].mean() > 240 and upright[8:].mean() < 15


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_an_out_of_range_orientation_leaves_the_pixels_as_stored(tmp_path, orientation) -> None:
    stored = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    path = _save(tmp_path / "odd.png", stored, orientation)
    assert np.array_equal(np.asarray(read_image(str(path), apply_exif_orientation=True)), stored)


@pytest.mark.parametrize(
    ("exif", "logged"),
    [
        (b"\x00\x01\x02", True),  # not a TIFF header: Pillow's parser raises
        (b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff garbage", False),  # truncated entries: Pillow reads none
    ],
)
def test_a_broken_exif_block_keeps_the_pixels(tmp_path, caplog, exif: bytes, logged: bool) -> None:
    stored = np.random.default_rng(1).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    path = tmp_path / "broken.png"
    Image.fromarray(stored).save(path, exif=exif)
    with caplog.at_level(logging.WARNING, logger="nlzoo.data.image_dataset"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow's own "Corrupt EXIF data"
        image = read_image(str(path), apply_exif_orientation=True)
    assert np.array_equal(np.asarray(image), stored)
    assert ("unreadable EXIF data" in caplog.text) == logged


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grey=st.integers(1, 6).flatmap(
        lambda h: st.lists(st.lists(st.integers(0, 65535), min_size=3, max_size=3), min_size=h, max_size=h)
    ),
    suffix=st.sampled_from([".png", ".tif"]),
)
def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path, grey, suffix) -> None:
    """Pillow's own convert clips 16-bit grey at 255: a 16-bit PNG became a white image."""
    values = np.array(grey, dtype=np.uint16)
    path = tmp_path / f"grey16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    expected = np.round(values / 257).astype(np.uint8)  # 65535 / 255 = 257: the 16-bit range onto 8 bits
    assert np.array_equal(np.asarray(read_image(str(path))), np.repeat(expected[..., None], 3, axis=-1))


def test_pixels_without_a_known_range_are_refused_and_saving_them_as_advised_reads(tmp_path) -> None:
    from nlzoo.errors import ImageDecodeError

    wide = np.array([[0, 70000], [5, 9]], dtype=np.int32)
    floats = np.array([[0.0, 0.5], [1.0, 2.5]], dtype=np.float32)
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    Image.fromarray(floats).save(tmp_path / "floats.tif")
    for name in ("wide.tif", "floats.tif"):
        with pytest.raises(ImageDecodeError, match="save it with 8 or 16 bits per channel"):
            read_image(str(tmp_path / name))
    # As advised: 16 bits (the user's own scaling) and 8 bits.
    Image.fromarray((wide.astype(np.int64) * 65535 // wide.max()).astype(np.uint16)).save(tmp_path / "wide16.tif")
    Image.fromarray((floats / floats.max() * 255).astype(np.uint8)).save(tmp_path / "floats8.tif")
    assert np.asarray(read_image(str(tmp_path / "wide16.tif")))[0, 1].tolist() == [255, 255, 255]
    assert np.asarray(read_image(str(tmp_path / "floats8.tif")))[1, 1].tolist() == [255, 255, 255]


def test_in_range_32_bit_integers_read_as_sixteen_bit(tmp_path) -> None:
    values = np.array([[0, 257, 65535]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "int32.tif")
    assert Image.open(tmp_path / "int32.tif").mode == "I"
    assert np.asarray(read_image(str(tmp_path / "int32.tif")))[0, :, 0].tolist() == [0, 1, 255]


@pytest.mark.parametrize("pix_fmt", ["rgb48be", "rgba64be", "ya16be", "gray16be", "pal8", "gray"])
def test_pngs_ffmpeg_writes_in_any_depth_read_as_ffmpeg_reads_them(tmp_path, pix_fmt) -> None:
    """Files nlzoo did not make: FFmpeg's 16-bit colour, alpha and grey PNGs match FFmpeg's own 8-bit RGB."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is missing: `make ffmpeg` installs it (make test does)")
    png, raw = tmp_path / "test.png", tmp_path / "test.rgb"
    source = ["-f", "lavfi", "-i", "testsrc=size=32x24", "-frames:v", "1"]
    subprocess.run([ffmpeg, "-loglevel", "error", *source, "-pix_fmt", pix_fmt, str(png)], check=True)
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(png), "-pix_fmt", "rgb24", "-f", "rawvideo", str(raw)], check=True
    )
    expected = np.fromfile(raw, dtype=np.uint8).reshape(24, 32, 3).astype(int)
    assert np.abs(np.asarray(read_image(str(png))).astype(int) - expected).max() <= 1  # rounding of 16 -> 8 bits
