"""Drawing attention maps with Pillow: the paper's Figure 3 (arrows between frames) plus per-query heat maps.

The picture is a grid of panels, one column per time step of the block (one frame of the clip each; a
single column for images), all ``panel_height`` pixels high:

- row 0: the frames with, for each query (a coloured ring), arrows to its ``top_k`` strongest keys, drawn
  across frames when the key is at another time; thicker and more opaque for larger weights;
- row 1 + q: the weights of query q over all keys as a heat map in the query's colour.

The animation has one frame per input frame: the frame with every query's heat map at that time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw

from ..limits import check_limit
from .attention import AttentionMap

QUERY_COLOURS = (
    (255, 60, 60),
    (60, 200, 255),
    (255, 215, 0),
    (110, 255, 110),
    (255, 110, 255),
    (255, 150, 50),
    (170, 130, 255),
    (255, 255, 255),
)


@dataclass(frozen=True)
class PanelGrid:
    """Where panels go: ``columns`` x ``rows`` panels of ``panel`` (width, height), ``gap`` pixels apart."""

    columns: int
    rows: int
    panel: tuple[int, int]
    gap: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole picture."""
        (w, h), g = self.panel, self.gap
        return self.columns * w + (self.columns - 1) * g, self.rows * h + (self.rows - 1) * g

    def origin(self, row: int, column: int) -> tuple[int, int]:
        (w, h), g = self.panel, self.gap
        return column * (w + g), row * (h + g)

    def cell_centre(self, row: int, column: int, cell: tuple[int, int], grid: tuple[int, int]) -> tuple[float, float]:
        """Pixel (x, y) of the centre of feature cell (h, w) of an (H', W') grid inside a panel."""
        x0, y0 = self.origin(row, column)
        (w, h) = self.panel
        return x0 + (cell[1] + 0.5) * w / grid[1], y0 + (cell[0] + 0.5) * h / grid[0]


def panel_size(frame_shape: tuple[int, int], panel_height: int) -> tuple[int, int]:
    """(width, height) of a panel showing an (H, W) frame at ``panel_height`` pixels high."""
    height, width = frame_shape
    return max(1, round(width * panel_height / height)), panel_height


def frame_of_step(step: int, steps: int, frames: int) -> int:
    """The input frame shown for time step ``step`` of ``steps`` (the middle of the frames it covers)."""
    return min(frames - 1, (2 * step + 1) * frames // (2 * steps))


def _split_time(amap: AttentionMap) -> tuple[int, tuple[int, int], int, tuple[int, int]]:
    """(steps, spatial grid, key steps, spatial key grid); 2-D maps have one step."""
    if len(amap.grid) == 2:
        return 1, amap.grid, 1, amap.key_grid  # type: ignore[return-value]
    return amap.grid[0], amap.grid[1:], amap.key_grid[0], amap.key_grid[1:]  # type: ignore[return-value]


def _with_time(coords: tuple[int, ...]) -> tuple[int, int, int]:
    return (0, *coords) if len(coords) == 2 else coords  # type: ignore[return-value]


def _heat_layer(weights: np.ndarray, size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    """An RGBA layer: ``colour`` with opacity following ``weights`` (H', W') in [0, 1], upsampled to ``size``."""
    alpha = Image.fromarray(np.uint8(np.clip(weights, 0, 1) * 200)).resize(size, Image.Resampling.BILINEAR)
    layer = Image.new("RGBA", size, (*colour, 0))
    layer.putalpha(alpha)
    return layer


def _arrow(
    draw: ImageDraw.ImageDraw,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    fill: tuple[int, ...],
    width: int,
) -> None:
    draw.line([start, end], fill=fill, width=width)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    head = 4 + 2 * width
    left = (end[0] - head * math.cos(angle - 0.45), end[1] - head * math.sin(angle - 0.45))
    right = (end[0] - head * math.cos(angle + 0.45), end[1] - head * math.sin(angle + 0.45))
    draw.polygon([end, left, right], fill=fill)


def _ring(draw: ImageDraw.ImageDraw, centre: tuple[float, float], colour: tuple[int, int, int], radius: int) -> None:
    x, y = centre
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=(0, 0, 0), width=4)
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=colour, width=2)


def render_figure(
    frames: np.ndarray, amap: AttentionMap, *, top_k: int = 20, panel_height: int = 192, gap: int = 6
) -> Image.Image:
    """The still picture (see the module docstring).

    Args:
        frames: (T, H, W, 3) uint8 input frames as the model saw them (one frame for an image).
        amap: the block's attention map for that input.
        top_k: arrows per query (the paper draws 20).
        panel_height: height of each panel in pixels.
        gap: pixels between panels.

    Returns:
        An RGB :class:`PIL.Image.Image` of size :attr:`PanelGrid.size`.
    """
    steps, grid, key_steps, key_grid = _split_time(amap)
    layout = PanelGrid(steps, 1 + len(amap.queries), panel_size(frames.shape[1:3], panel_height), gap)
    width, height = layout.size
    check_limit("figure_pixels", width * height, what=f"the figure ({width}x{height} pixels)")
    canvas = Image.new("RGBA", layout.size, (0, 0, 0, 255))
    shown = [Image.fromarray(frames[frame_of_step(t, steps, len(frames))]).resize(layout.panel) for t in range(steps)]
    for row in range(layout.rows):
        for t, image in enumerate(shown):
            canvas.paste(image, layout.origin(row, t))

    weights = amap.weights.numpy()
    peak = weights.max(axis=1, keepdims=True).clip(min=1e-12)
    values, keys = amap.top_keys(top_k)
    overlay = Image.new("RGBA", layout.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for q, position in enumerate(amap.query_positions()):
        colour = QUERY_COLOURS[q % len(QUERY_COLOURS)]
        tq, *cell = _with_time(position)
        start = layout.cell_centre(0, tq, tuple(cell), grid)  # type: ignore[arg-type]
        for value, key in sorted(zip(values[q].tolist(), keys[q].tolist(), strict=True)):  # strongest on top
            tk, *key_cell = _with_time(tuple(key))
            end = layout.cell_centre(0, tk, tuple(key_cell), key_grid)  # type: ignore[arg-type]
            strength = value / float(peak[q, 0])
            _arrow(draw, start, end, fill=(*colour, int(60 + 195 * strength)), width=1 + round(2 * strength))
        _ring(draw, start, colour, radius=max(4, panel_height // 24))

        heat = (weights[q] / peak[q]).reshape(key_steps, *key_grid)
        for t in range(steps):
            canvas.alpha_composite(_heat_layer(heat[t], layout.panel, colour), layout.origin(1 + q, t))
        ring_draw = ImageDraw.Draw(canvas)
        _ring(ring_draw, layout.cell_centre(1 + q, tq, tuple(cell), grid), colour, radius=max(4, panel_height // 24))  # type: ignore[arg-type]
    canvas.alpha_composite(overlay)
    return canvas.convert("RGB")


def render_animation(frames: np.ndarray, amap: AttentionMap, *, panel_height: int = 192) -> list[Image.Image]:
    """One picture per input frame: the frame with every query's heat map at its time step, queries ringed."""
    steps, grid, key_steps, key_grid = _split_time(amap)
    size = panel_size(frames.shape[1:3], panel_height)
    layout = PanelGrid(1, 1, size, 0)
    weights = amap.weights.numpy()
    heat = (weights / weights.max(axis=1, keepdims=True).clip(min=1e-12)).reshape(len(weights), key_steps, *key_grid)
    pictures = []
    for index, frame in enumerate(frames):
        step = min(steps - 1, index * steps // len(frames))
        picture = Image.fromarray(frame).resize(size).convert("RGBA")
        for q, position in enumerate(amap.query_positions()):
            colour = QUERY_COLOURS[q % len(QUERY_COLOURS)]
            picture.alpha_composite(_heat_layer(heat[q, step], size, colour))
            tq, *cell = _with_time(position)
            if tq == step:
                _ring(ImageDraw.Draw(picture), layout.cell_centre(0, 0, tuple(cell), grid), colour, radius=6)  # type: ignore[arg-type]
        pictures.append(picture.convert("RGB"))
    return pictures


def save_gif(pictures: list[Image.Image], path: str | os.PathLike[str] | BinaryIO, *, frame_ms: int = 250) -> None:
    """An endlessly looping animated GIF, to a file or a binary stream."""
    first, *rest = pictures
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=frame_ms, loop=0, disposal=2)
