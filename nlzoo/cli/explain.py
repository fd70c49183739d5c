"""``nlzoo explain``: draw where a non-local block looks (the paper's Figure 3) for a video or an image."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # torch loads when the command runs, not for --help
    from torch import nn

HELP = "draw a non-local block's attention for a video or image (PNG, and an animated GIF for video)"

EPILOG = """examples:
  nlzoo explain clip.mp4 --model outputs/demo/models/c2d_r18_nl
  nlzoo explain clip.mp4 --model i3d_r50_nl_k400 --block layer3.1_nonlocal --queries 4,112,60 6,30,200
The clip is the centre clip and centre crop of the model's test views; query positions are t,y,x (frame,
row, column) in that clip, or y,x for an image. Without --queries, the positions whose attention is most
concentrated are shown. The PNG's first row draws each query's strongest keys as arrows (across frames
when they are at another time); each following row is one query's attention as a heat map."""


def _query(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(,\d+){1,2}", text.strip()):
        raise argparse.ArgumentTypeError(
            f"a query is t,y,x (video) or y,x (image) in pixels, e.g. 3,40,12; got {text!r}"
        )
    return tuple(int(v) for v in text.split(","))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .argtypes import add_precision_argument

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("input", metavar="VIDEO_OR_IMAGE", help="a video file, or an image for 2-D models")
    parser.add_argument(
        "--model", required=True, metavar="NAME_OR_DIR", help="model folder, hf-hub:org/repo or arch.tag"
    )
    parser.add_argument("--block", help="non-local block to draw, e.g. layer2.1_nonlocal (default: the first)")
    parser.add_argument("--queries", nargs="+", type=_query, metavar="T,Y,X", help="query positions in the clip")
    parser.add_argument("--num-queries", type=int, default=4, help="queries to pick when none are given (default 4)")
    parser.add_argument("--top-k", type=int, default=20, help="arrows per query (default 20, as the paper)")
    parser.add_argument("--panel-height", type=int, default=192, help="height of each drawn frame in pixels")
    parser.add_argument("--out", type=Path, default=Path("outputs/explain"), help="output folder (%(default)s)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available, else cpu)")
    add_precision_argument(parser)


@dataclass(frozen=True)
class ExplainOutput:
    """What :func:`write_attention_maps` wrote, and the queries it drew (as input positions)."""

    png: Path
    gif: Path | None
    block: str
    queries: list[tuple[int, ...]]


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
    import torch

    from ..explain import attention_map, render_animation, render_figure, save_gif
    from ..limits import check_limit
    from ..precision import inference_precision
    from .inputs import is_image, read_image, read_video_views, to_display

    if num_queries < 1 or top_k < 1 or panel_height < 8:
        raise ConfigError("--num-queries and --top-k must be >= 1 and --panel-height >= 8")
    check_limit("queries", len(queries) if queries else num_queries, what="the number of queries")
    check_limit("top_k", top_k, what="--top-k (arrows per query)")
    check_limit("panel_height", panel_height, what="--panel-height")
    config = model.nlzoo_config.data_config
    video_model = config.num_frames is not None
    if is_image(path) == video_model:
        kind = "a video model: give a video file" if video_model else "an image model: give an image file"
        raise ConfigError(f"{model.nlzoo_config.architecture} is {kind} (got {path})")
    x = read_image(path, config) if not video_model else read_video_views(path, config, num_clips=1, num_crops=1)
    device = next(model.parameters()).device
    takes_normalised = getattr(model, "normalised_inputs", contextlib.nullcontext)  # detectors normalise inside
    with torch.no_grad(), takes_normalised(), inference_precision(precision, device):
        amap = attention_map(model, x.to(device), block=block, queries=queries, num_queries=num_queries)
    frames = to_display(x[0], config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(path).stem}.{amap.block}"
    png = out / f"{stem}.png"
    render_figure(frames, amap, top_k=top_k, panel_height=panel_height).save(png)
    gif = None
    if video_model:
        gif = out / f"{stem}.gif"
        save_gif(render_animation(frames, amap, panel_height=panel_height), gif)
    drawn = [_cell_to_input(cell, amap.grid, tuple(x.shape[2:])) for cell in amap.query_positions()]
    return ExplainOutput(png, gif, amap.block, drawn)


def _cell_to_input(cell: tuple[int, ...], grid: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input position at the centre of a grid cell."""
    return tuple((2 * c + 1) * s // (2 * g) for c, g, s in zip(cell, grid, shape, strict=True))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..errors import InputNotFoundError
    from .inputs import default_device, load_for_inference

    if not Path(args.input).is_file():  # before loading (and perhaps downloading) a model
        raise InputNotFoundError(f"{args.input} does not exist")
    err = Console(stderr=True)
    with err.status(f"loading {args.model}"):
        model = load_for_inference(args.model, device=args.device or default_device())
    with err.status(f"computing attention for {args.input}"):
        result = write_attention_maps(
            model,
            args.input,
            args.out,
            block=args.block,
            queries=args.queries,
            num_queries=args.num_queries,
            top_k=args.top_k,
            panel_height=args.panel_height,
            precision=args.precision,
        )
    where = ", ".join(",".join(map(str, q)) for q in result.queries)
    print(f"block {result.block}; queries ({'t,y,x' if result.gif else 'y,x'} in the model's input): {where}")
    print(f"wrote {result.png}" + (f" and {result.gif}" if result.gif else ""))
    return 0
