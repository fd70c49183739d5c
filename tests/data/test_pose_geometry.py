from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nlzoo.data.pose_geometry import box_to_window, crop_matrix, invert_affine, transform_points, warp_crop


def test_window_takes_the_input_aspect_ratio_and_padding() -> None:
    centre, window = box_to_window([10, 20, 30, 80], aspect_ratio=0.75, padding=1.25)
    np.testing.assert_allclose(centre, [25, 60])
    np.testing.assert_allclose(window, [60 * 1.25, 80 * 1.25])  # widened to 3:4, then padded
    _, wide = box_to_window([0, 0, 90, 60], aspect_ratio=0.75, padding=1.0)
    np.testing.assert_allclose(wide, [90, 120])


@pytest.mark.parametrize(
    ("rotation", "flip", "window"), [(0, False, 15), (90, False, 15), (30, True, 10), (-65, False, 8)]
)
def test_the_warp_moves_pixels_where_the_matrix_moves_points(rotation: float, flip: bool, window: float) -> None:
    pixels = np.zeros((64, 64), np.uint8)
    pixels[20, 33] = 255
    matrix = crop_matrix(np.array([30.0, 20.0]), np.array([window, window]), (15, 15), rotation=rotation, flip=flip)
    crop = np.asarray(warp_crop(Image.fromarray(pixels), matrix, (15, 15))).astype(float)
    ys, xs = np.mgrid[:15, :15]
    centroid = [(crop * xs).sum() / crop.sum(), (crop * ys).sum() / crop.sum()]
    np.testing.assert_allclose(centroid, transform_points(np.array([[33.0, 20.0]]), matrix)[0], atol=0.05)
    round_trip = transform_points(transform_points(np.eye(2), matrix), invert_affine(matrix))
    np.testing.assert_allclose(round_trip, np.eye(2), atol=1e-9)


def test_rotation_turns_content_counter_clockwise_and_flip_mirrors() -> None:
    centre, window = np.array([50.0, 50.0]), np.array([21.0, 21.0])
    right_of_centre = np.array([[55.0, 50.0]])
    up = transform_points(right_of_centre, crop_matrix(centre, window, (21, 21), rotation=90))
    np.testing.assert_allclose(up, [[10.0, 5.0]], atol=1e-9)
    mirrored = transform_points(right_of_centre, crop_matrix(centre, window, (21, 21), flip=True))
    np.testing.assert_allclose(mirrored, [[5.0, 10.0]], atol=1e-9)
