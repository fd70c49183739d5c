"""``nlzoo explain``: draw where a non-local block looks (the paper's Figure 3) for a video or an image."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when the command runs, not for --help
    pass

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
    from .argtypes import add_precision_argument, positive_int

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("input", metavar="VIDEO_OR_IMAGE", help="a video file, or an image for 2-D models")
    parser.add_argument(
        "--model", required=True, metavar="NAME_OR_DIR", help="model folder, hf-hub:org/repo or arch.tag"
    )
    parser.add_argument("--block", help="non-local block to draw, e.g. layer2.1_nonlocal (default: the first)")
    parser.add_argument("--queries", nargs="+", type=_query, metavar="T,Y,X", help="query positions in the clip")
    parser.add_argument(
        "--num-queries", type=positive_int, default=4, help="queries to pick when none are given (default 4)"
    )
    parser.add_argument("--top-k", type=positive_int, default=20, help="arrows per query (default 20, as the paper)")
    parser.add_argument("--panel-height", type=int, default=192, help="height of each drawn frame in pixels")
    parser.add_argument("--out", type=Path, default=Path("outputs/explain"), help="output folder (%(default)s)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available, else cpu)")
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..errors import InputNotFoundError
    from ..files import make_out_dir
    from ..inference.attention import check_drawing_options, write_attention_maps
    from ..inference.inputs import default_device, load_for_inference

    # Everything the user typed is checked before loading (and perhaps downloading) a model.
    if Path(args.input).is_dir():
        raise InputNotFoundError(f"{args.input}: is a directory; give one video or image file")
    if not Path(args.input).is_file():
        raise InputNotFoundError(f"{args.input}: no such file; check the path")
    check_drawing_options(
        queries=args.queries, num_queries=args.num_queries, top_k=args.top_k, panel_height=args.panel_height
    )
    make_out_dir(args.out)
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
