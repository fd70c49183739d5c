"""Heatmap coding for top-down pose: joints <-> Gaussian heatmaps, flip-test, and the crop's affine map.

Coordinates are pixel indices (pixel centres at integers) in every space. The heatmap is aligned to the
input by pixel centres: heatmap pixel ``j`` covers input pixels ``[s*j, s*j + s)`` for stride ``s``, so its
centre is input coordinate ``s*j + (s-1)/2``. With that alignment a horizontally flipped input gives exactly
the flipped heatmap (no one-pixel shift is needed, unlike SimpleBaseline's ``SHIFT_HEATMAP``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..errors import ConfigError


class HeatmapCodec:
    """Encode joints as Gaussian heatmaps and decode heatmaps back to joints, both in input-crop pixels.

    Args:
        input_size: (H, W) of the network input (SimpleBaseline: (256, 192)).
        heatmap_size: (h, w) of the heatmaps (SimpleBaseline: (64, 48)).
        sigma: Gaussian standard deviation in heatmap pixels (2 in SimpleBaseline).

    Example:
        >>> codec = HeatmapCodec((256, 192), (64, 48))
        >>> joints = torch.tensor([[[100.0, 60.0]]])
        >>> heatmaps, weights = codec.encode(joints, torch.ones(1, 1))
        >>> coords, scores = codec.decode(heatmaps)
        >>> bool((coords - joints).abs().max() < 1.0)
        True
    """

    def __init__(self, input_size: Sequence[int], heatmap_size: Sequence[int], *, sigma: float = 2.0) -> None:
        if len(input_size) != 2 or len(heatmap_size) != 2:
            raise ConfigError(f"sizes are (H, W); got input {input_size} and heatmap {heatmap_size}")
        if sigma <= 0:
            raise ConfigError(f"sigma must be positive; got {sigma}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        # (x, y) strides, input pixels per heatmap pixel
        self.stride = (self.input_size[1] / self.heatmap_size[1], self.input_size[0] / self.heatmap_size[0])

    def to_heatmap(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 2) input (x, y) -> heatmap (x, y)."""
        stride = points.new_tensor(self.stride)
        return (points + 0.5) / stride - 0.5

    def to_input(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 2) heatmap (x, y) -> input (x, y)."""
        stride = points.new_tensor(self.stride)
        return (points + 0.5) * stride - 0.5

    def encode(self, joints: torch.Tensor, visibility: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target heatmaps and per-joint loss weights.

        The Gaussian is centred on the exact sub-pixel joint position. A joint gets weight 1 when it is
        labelled (``visibility > 0``) and its Gaussian reaches the heatmap (centre at most 3 sigma outside);
        otherwise weight 0 and an all-zero heatmap.

        Args:
            joints: (..., K, 2) joint (x, y) in input pixels.
            visibility: (..., K) COCO visibility flags (0 unlabelled, 1 occluded, 2 visible).

        Returns:
            heatmaps (..., K, h, w) with peak 1, and weights (..., K).
        """
        h, w = self.heatmap_size
        centre = self.to_heatmap(joints.float())
        reach = 3 * self.sigma
        inside = (
            (centre[..., 0] >= -reach)
            & (centre[..., 0] <= w - 1 + reach)
            & (centre[..., 1] >= -reach)
            & (centre[..., 1] <= h - 1 + reach)
        )
        weights = ((visibility > 0) & inside).to(centre.dtype)
        xs = torch.arange(w, dtype=centre.dtype, device=centre.device)
        ys = torch.arange(h, dtype=centre.dtype, device=centre.device)
        gx = torch.exp(-((xs - centre[..., 0:1]) ** 2) / (2 * self.sigma**2))  # (..., K, w)
        gy = torch.exp(-((ys - centre[..., 1:2]) ** 2) / (2 * self.sigma**2))  # (..., K, h)
        heatmaps = gy.unsqueeze(-1) * gx.unsqueeze(-2) * weights[..., None, None]
        return heatmaps, weights

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint positions (input pixels) and confidences from heatmaps.

        The arg-max is moved a quarter pixel toward the higher of its two neighbours along x and along y
        (the standard refinement of SimpleBaseline / HRNet), which halves the quantisation error.

        Args:
            heatmaps: (..., K, h, w).

        Returns:
            coords (..., K, 2) as (x, y) in input pixels, and scores (..., K): the heatmap maxima.
        """
        *lead, h, w = heatmaps.shape
        flat = heatmaps.reshape(-1, h * w)
        scores, index = flat.max(dim=1)
        x, y = index % w, torch.div(index, w, rounding_mode="floor")
        rows = torch.arange(flat.shape[0], device=flat.device)

        def value(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
            return flat[rows, yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)]

        dx = torch.sign(value(y, x + 1) - value(y, x - 1)) * ((x > 0) & (x < w - 1))
        dy = torch.sign(value(y + 1, x) - value(y - 1, x)) * ((y > 0) & (y < h - 1))
        coords = torch.stack([x + 0.25 * dx, y + 0.25 * dy], dim=-1).to(heatmaps.dtype)
        return self.to_input(coords).reshape(*lead, 2), scores.reshape(lead)


def flip_heatmaps(heatmaps: torch.Tensor, flip_index: Sequence[int]) -> torch.Tensor:
    """Heatmaps of a mirrored input mapped back to the original: flip along W and swap left/right channels.

    Args:
        heatmaps: (B, K, h, w) predicted on horizontally flipped inputs.
        flip_index: ``flip_index[k]`` is the channel joint ``k`` occupies in the mirrored image
            (:attr:`nlzoo.models.skeleton.Skeleton.flip_index`).
    """
    if len(flip_index) != heatmaps.shape[-3]:
        raise ValueError(f"flip_index has {len(flip_index)} entries for {heatmaps.shape[-3]} heatmap channels")
    index = torch.as_tensor(list(flip_index), device=heatmaps.device)
    return heatmaps.flip(-1).index_select(-3, index)


def apply_affine(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """(..., N, 2) points through (..., 2, 3) affine matrices: ``p' = A p + t``."""
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., 2].unsqueeze(-2)


def decode_to_image(heatmaps: torch.Tensor, crop_to_image: torch.Tensor, input_size: Sequence[int]) -> torch.Tensor:
    """(B, K, h, w) heatmaps of (H, W) crops -> (B, K, 3) image-space x, y and confidence.

    Args:
        heatmaps: the model's output.
        crop_to_image: (B, 2, 3) matrices from crop pixels to image pixels.
        input_size: (H, W) of the crops.
    """
    codec = HeatmapCodec(input_size, heatmaps.shape[-2:])
    coords, scores = codec.decode(heatmaps.float())
    image_xy = apply_affine(coords, crop_to_image.to(coords.dtype))
    return torch.cat([image_xy, scores.unsqueeze(-1)], dim=-1)


def flip_test(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    flip_index: Sequence[int],
    *,
    heatmaps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Heatmaps averaged over the crops and their mirror images (flip-test), ``(B, K, h, w)``.

    ``heatmaps``: ``model(images)`` if the caller already has it (saves a forward pass).
    """
    heatmaps = model(images) if heatmaps is None else heatmaps
    return (heatmaps + flip_heatmaps(model(images.flip(-1)), flip_index)) / 2
