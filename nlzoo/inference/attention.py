"""Attention pictures for one input file: the picture of :mod:`nlzoo.explain` drawn from a video or an image."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..errors import ConfigError
from ..zoo.config import DataConfig


@dataclass(frozen=True)
class AttentionPictures:
    """One block's attention for one input: the still figure, the animation (clips only), and what was drawn."""

    figure: Image.Image
    animation: list[Image.Image] | None
    block: str
    queries: list[tuple[int, ...]]


@dataclass(frozen=True)
class ExplainOutput:
    """What :func:`write_attention_maps` wrote, and the queries it drew (as input positions)."""

    png: Path
    gif: Path | None
    block: str
    queries: list[tuple[int, ...]]


def check_drawing_options(
    *, queries: list[tuple[int, ...]] | None, num_queries: int, top_k: int, panel_height: int
) -> None:
    """Refuse drawing options out of range or over their limits (one line naming the option).

    Raises:
        ConfigError: below the minimum. LimitError: over the limit.
    """
    from ..limits import check_limit

    minimums = (("--num-queries", num_queries, 1), ("--top-k", top_k, 1), ("--panel-height", panel_height, 8))
    for flag, value, least in minimums:
        if value < least:
            raise ConfigError(f"{flag} must be >= {least}; got {value}")
    check_limit("queries", len(queries) if queries else num_queries, what="the number of queries")
    check_limit("top_k", top_k, what="--top-k (arrows per query)")
    check_limit("panel_height", panel_height, what="--panel-height")


def write_attention_maps(
    model: nn.Module,
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    block: str | None = None,
    queries: list[tuple[int, ...]] | None = None,
    num_queries: int = 4,
    top_k: int = 20,
    panel_height: int = 192,
    precision: str = "auto",
) -> ExplainOutput:
    """Read ``path`` as the model expects, compute one block's attention and save the pictures.

    Args:
        model: a zoo model (it carries ``nlzoo_config``) with non-local blocks, in eval mode.
        path: a video (centre clip, centre crop) or, for 2-D models, an image.
        out_dir: where ``<name>.<block>.png`` (and ``.gif`` for video) go.
        block: block name (default: the first).
        queries: query positions in input pixels, t,y,x or y,x (default: picked, see :mod:`nlzoo.explain`).
        num_queries: how many to pick.
        top_k: arrows per query.
        panel_height: pixel height of each drawn frame.
        precision: inference precision (``auto``, ``fp32``, ``bf16``, ``fp16``; see :mod:`nlzoo.precision`).

    Returns:
        The written files and the drawn queries.
    """
    from ..explain import save_gif
    from ..files import make_out_dir
    from .inputs import is_image, read_image, read_photo, read_video_views
    from .pose import person_crops, whole_image_box

    check_drawing_options(queries=queries, num_queries=num_queries, top_k=top_k, panel_height=panel_height)
    config = model.nlzoo_config.data_config
    video_model = config.num_frames is not None
    still = is_image(path) and Path(path).suffix.lower() != ".gif"  # an animated GIF is a video too
    if (video_model and still) or (not video_model and not is_image(path)):
        kind = "a video model: give a video file" if video_model else "an image model: give an image file"
        raise ConfigError(f"{model.nlzoo_config.architecture} is {kind} (got {path})")
    if video_model:
        x = read_video_views(path, config, num_clips=1, num_crops=1)
    elif model.nlzoo_config.task == "pose-estimation":  # the whole image as one person box, as predict-image does
        image = read_photo(path)
        x = person_crops(image, whole_image_box(image), config)[0]
    else:
        x = read_image(path, config)
    pictures = draw_attention(
        model,
        x,
        config,
        block=block,
        queries=queries,
        num_queries=num_queries,
        top_k=top_k,
        panel_height=panel_height,
        precision=precision,
    )
    out = make_out_dir(out_dir)
    stem = f"{Path(path).stem}.{pictures.block}"
    png = out / f"{stem}.png"
    pictures.figure.save(png)
    gif = None
    if pictures.animation is not None:
        gif = out / f"{stem}.gif"
        save_gif(pictures.animation, gif)
    return ExplainOutput(png, gif, pictures.block, pictures.queries)


def draw_attention(
    model: nn.Module,
    x: torch.Tensor,
    data_config: DataConfig,
    *,
    block: str | None = None,
    queries: list[tuple[int, ...]] | None = None,
    num_queries: int = 4,
    top_k: int = 20,
    panel_height: int = 192,
    precision: str = "auto",
) -> AttentionPictures:
    """Compute one block's attention for one model input and draw it (see :func:`write_attention_maps`).

    Args:
        model: a network with non-local blocks, in eval mode.
        x: one input as the model takes it, (1, C, T, H, W) or (1, C, H, W), normalised with ``data_config``.
        data_config: how ``x`` was normalised (to show its pixels).
        block, queries, num_queries, top_k, panel_height, precision: as for :func:`write_attention_maps`.

    Returns:
        The figure, the animation (clips only), the block and the queries as input positions.
    """
    from ..explain import attention_map, render_animation, render_figure
    from ..precision import inference_precision
    from .inputs import to_display

    device = next(model.parameters()).device
    takes_normalised = getattr(model, "normalised_inputs", contextlib.nullcontext)  # detectors normalise inside
    with torch.no_grad(), takes_normalised(), inference_precision(precision, device):
        amap = attention_map(model, x.to(device), block=block, queries=queries, num_queries=num_queries)
    frames = to_display(x[0], data_config)
    figure = render_figure(frames, amap, top_k=top_k, panel_height=panel_height)
    animation = render_animation(frames, amap, panel_height=panel_height) if x.dim() == 5 else None
    drawn = [_cell_to_input(cell, amap.grid, tuple(x.shape[2:])) for cell in amap.query_positions()]
    return AttentionPictures(figure, animation, amap.block, drawn)


def _cell_to_input(cell: tuple[int, ...], grid: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input position at the centre of a grid cell."""
    return tuple((2 * c + 1) * s // (2 * g) for c, g, s in zip(cell, grid, shape, strict=True))
