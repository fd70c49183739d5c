"""``nlzoo predict-video``: the top-k classes of a video, scores averaged over the paper's test views."""

from __future__ import annotations

import argparse

from ..errors import ConfigError

HELP = "classify a video: top-5 labels with scores, averaged over multi-view testing (10 clips x 3 crops)"

EPILOG = """examples:
  nlzoo predict-video archery.mp4 --model r2plus1d_18.kinetics400
  nlzoo predict-video clip.mp4 --model outputs/demo/models/c2d_r18_nl --views 1x1
  nlzoo predict-video clip.mp4 --model i3d_r50_nl --json | jq '.top_k[0].label'
Views default to the model's data config (test_clips x test_crops; the paper: 10 x 3). Scores are softmax
probabilities averaged over the views (sigmoid with --multi-label)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .argtypes import add_precision_argument, parse_views, positive_int

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("video", metavar="VIDEO", help="a video file (anything FFmpeg reads: .mp4, .avi, .mkv, ...)")
    parser.add_argument(
        "--model", required=True, metavar="NAME_OR_DIR", help="model folder, hf-hub:org/repo, arch.tag or arch"
    )
    parser.add_argument(
        "--views", type=parse_views, metavar="CLIPSxCROPS", help="test views, e.g. 10x3 (default: the model's)"
    )
    parser.add_argument("--top-k", type=positive_int, default=5, help="how many classes to show (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (input, model, views, top_k)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="views per forward pass (default 4)")
    parser.add_argument("--multi-label", action="store_true", help="sigmoid scores (multi-label models, Charades)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ..data.video_io import check_video_path
    from ..inference.inputs import default_device, load_for_inference, read_video_views
    from ..inference.scores import class_scores
    from .tables import print_top_k, print_top_k_json

    check_video_path(args.video)  # before loading (and perhaps downloading) a model
    device = args.device or default_device()
    err = Console(stderr=True)
    with err.status(f"loading {args.model}"):
        model = load_for_inference(args.model, device=device)
    cfg = model.nlzoo_config
    if cfg.data_config.num_frames is None:
        raise ConfigError(
            f"{args.model} is an image model ({cfg.task}); predict-video needs a video model; for an image: "
            f"`nlzoo predict-image IMAGE --model {args.model}`"
        )
    clips, crops = args.views or (cfg.data_config.test_clips or 1, cfg.data_config.test_crops or 1)
    with err.status(f"decoding {clips}x{crops} views of {args.video}"):
        views = read_video_views(args.video, cfg.data_config, num_clips=clips, num_crops=crops)
    total = -(-len(views) // args.batch_size)
    with Progress(console=err, transient=True) as progress:
        mean = class_scores(
            model,
            views,
            batch_size=args.batch_size,
            multi_label=args.multi_label,
            precision=args.precision,
            track=lambda batches: progress.track(batches, total=total, description="classifying views"),
        )
    if args.json:
        print_top_k_json(
            mean, cfg.label_names, args.top_k, input=args.video, model=cfg.architecture, views=f"{clips}x{crops}"
        )
        return 0
    d = cfg.data_config
    console = Console()
    console.print(
        f"{args.video}: {cfg.architecture}, {clips}x{crops} views of {d.num_frames}x{d.sampling_rate} frames, "
        f"{d.crop_size[0]}x{d.crop_size[1]} crops",
        highlight=False,
        soft_wrap=True,
    )
    print_top_k(console, err, mean, cfg.label_names, args.top_k)
    return 0
