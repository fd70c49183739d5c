from __future__ import annotations

import numpy as np
import torch

from nlzoo.data.pose_geometry import box_to_window, crop_matrix, invert_affine, transform_points
from nlzoo.models.pose_codec import HeatmapCodec, decode_to_image, flip_heatmaps, flip_test
from nlzoo.models.skeleton import COCO_PERSON

CODEC = HeatmapCodec((256, 192), (64, 48), sigma=2.0)


def test_targets_are_unit_gaussians_at_the_joint_with_weights_from_visibility() -> None:
    joints = torch.tensor([[40.0, 100.0], [40.0, 100.0], [40.0, 100.0], [-60.0, 100.0]])
    heatmaps, weights = CODEC.encode(joints, torch.tensor([2.0, 1.0, 0.0, 2.0]))
    assert weights.tolist() == [1.0, 1.0, 0.0, 0.0]  # unlabelled; far outside the crop
    assert heatmaps[2].abs().sum() == 0 and heatmaps[3].abs().sum() == 0
    # input (40, 100) is heatmap ((40.5) / 4 - 0.5, 100.5 / 4 - 0.5) = (9.625, 24.625)
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
    expected = torch.exp(-((xs - 9.625) ** 2 + (ys - 24.625) ** 2) / (2 * 2.0**2))
    torch.testing.assert_close(heatmaps[0], expected)


def test_decoding_refines_the_argmax_by_a_quarter_pixel_toward_the_higher_neighbour() -> None:
    heatmaps = torch.zeros(1, 2, 8, 8)
    heatmaps[0, 0, 3, 4], heatmaps[0, 0, 3, 5], heatmaps[0, 0, 2, 4] = 1.0, 0.6, 0.3  # right and up
    heatmaps[0, 1, 0, 0] = 1.0  # a border peak is not moved
    codec = HeatmapCodec((32, 32), (8, 8))
    coords, scores = codec.decode(heatmaps)
    torch.testing.assert_close(codec.to_heatmap(coords[0]), torch.tensor([[4.25, 2.75], [0.0, 0.0]]))
    assert scores.tolist() == [[1.0, 1.0]]


def test_encode_then_decode_is_within_a_quarter_heatmap_pixel() -> None:
    joints = torch.rand(500, 1, 2) * torch.tensor([180.0, 240.0]) + 6
    coords, _ = CODEC.decode(CODEC.encode(joints, torch.full((500, 1), 2.0))[0])
    error = (coords - joints).abs().max()
    assert error <= 0.25 * 4 + 1e-4  # quarter heatmap pixel = one input pixel
    plain = CODEC.to_input(CODEC.to_heatmap(joints).round())
    assert (coords - joints).norm(dim=-1).mean() < 0.8 * (plain - joints).norm(dim=-1).mean()


def test_flipped_heatmaps_equal_the_targets_of_the_mirrored_crop() -> None:
    """The centre-aligned heatmap grid makes flip-test exact (no one-pixel shift)."""
    joints = torch.rand(17, 2) * torch.tensor([191.0, 255.0])
    heatmaps, _ = CODEC.encode(joints, torch.full((17,), 2.0))
    index = list(COCO_PERSON.flip_index)
    mirrored = torch.stack([191 - joints[:, 0], joints[:, 1]], dim=-1)[index]
    expected, _ = CODEC.encode(mirrored, torch.full((17,), 2.0))
    torch.testing.assert_close(flip_heatmaps(heatmaps[None], index)[0], expected)
    assert COCO_PERSON.flip_index[:7] == (0, 2, 1, 4, 3, 6, 5)


def test_flip_test_maps_the_mirrored_prediction_back() -> None:
    target, _ = CODEC.encode(torch.rand(1, 17, 2) * 150, torch.full((1, 17), 2.0))
    index = COCO_PERSON.flip_index

    def equivariant_model(images: torch.Tensor) -> torch.Tensor:  # sees whether its input is mirrored
        mirrored = bool(images[0, 0, 0, 0] > images[0, 0, 0, -1])
        return flip_heatmaps(target, index) if mirrored else target

    ramp = torch.linspace(0, 1, 192).expand(1, 3, 256, 192)
    torch.testing.assert_close(flip_test(equivariant_model, ramp, index), target)


def test_predictions_map_back_to_image_coordinates() -> None:
    image_joints = np.array([[310.0, 95.0], [350.5, 240.25], [280.0, 180.0]])
    centre, window = box_to_window([270, 60, 110, 220], aspect_ratio=192 / 256)
    matrix = crop_matrix(centre, window, (256, 192), rotation=25.0)
    crop_joints = torch.from_numpy(transform_points(image_joints, matrix)).float()
    heatmaps, _ = CODEC.encode(crop_joints[None], torch.full((1, 3), 2.0))
    to_image = torch.from_numpy(invert_affine(matrix)).float()[None]
    keypoints = decode_to_image(heatmaps, to_image, (256, 192))
    pixels_per_crop_pixel = window[1] / 256
    assert keypoints.shape == (1, 3, 3)
    assert (keypoints[0, :, :2] - torch.from_numpy(image_joints).float()).abs().max() <= pixels_per_crop_pixel * 1.5
    torch.testing.assert_close(keypoints[0, :, 2], torch.ones(3), atol=0.1, rtol=0)
