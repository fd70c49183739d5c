"""``nlzoo extract-features``: features of sliding windows over a video collection, one file per video."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.feature_windows import VideoEntry

HELP = "extract features of sliding windows from videos (a file, a folder or a list) into one file per video"

EPILOG = """examples:
  nlzoo extract-features videos/ --model i3d_r50_nl.kinetics400 --out feats/
  nlzoo extract-features list.txt --model ./my_model --out feats/ --stride 1s --crops 3 --layer layer3 --no-pool
Windows are the model's clips (frames x sampling rate of its data config), every --stride (default: the clip's
span, no overlap) while they fit; a video shorter than one window is padded by repeating its last frame
(--short pad) or skipped and listed (--short skip). Each video gives <out>/<relative path>.npy (windows x
crops x features) and a .json record; <out>/index.csv lists every window (start/end in seconds) and every
video that could not be read, with the reason. A rerun skips videos already done with the same settings."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .argtypes import add_precision_argument, positive_int

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("input", metavar="INPUT", help="a video, a folder (searched recursively) or a list file")
    parser.add_argument(
        "--model", required=True, metavar="NAME_OR_DIR", help="model folder, hf-hub:org/repo, arch.tag or arch"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; resumable)")
    parser.add_argument("--stride", help="window stride in frames (16) or seconds (1s); default the clip's span")
    parser.add_argument("--crops", type=int, choices=(1, 3), default=1, help="spatial crops per window (default 1)")
    parser.add_argument("--layer", default="pre_logits", help="pre_logits (default), logits or a stage (layer3)")
    parser.add_argument("--no-pool", action="store_true", help="keep a stage's (C, T, H, W) map instead of its mean")
    parser.add_argument("--short", choices=("pad", "skip"), default="pad", help="videos shorter than one window")
    parser.add_argument("--format", choices=("npy", "safetensors", "both"), default="npy", help="feature files")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="windows per forward pass (default 8)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader decoding workers (default 2)")
    add_precision_argument(parser)
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, ...")
    parser.add_argument("--devices", default="1", help="devices per node (Lightning; N > 1 runs DDP)")
    parser.add_argument("--num_nodes", "--num-nodes", type=int, default=1, help="machines (Lightning DDP)")


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from ..data.feature_windows import FeatureWindows, Stride, find_videos
    from ..errors import ConfigError
    from ..files import make_out_dir
    from ..inference.inputs import load_for_inference
    from ..precision import resolve_precision
    from ..tasks.features import FeatureExtractionTask, FeatureFileWriter, is_done, layer_names

    stride = Stride.parse(args.stride)
    resolve_precision(args.precision)
    if args.num_workers < 0:
        raise ConfigError(f"--num-workers must be >= 0; got {args.num_workers}")
    videos = find_videos(args.input)
    trainer = _trainer(args)  # before the model: a wrong --accelerator / --devices fails in seconds
    out = make_out_dir(args.out)
    model = load_for_inference(args.model)
    config = model.nlzoo_config.data_config
    if config.num_frames is None:
        raise ConfigError(f"{args.model} is an image model; extract-features needs a video model")
    task = FeatureExtractionTask(model, layer=args.layer, pool=not args.no_pool, precision=args.precision)
    if args.no_pool and args.layer in ("pre_logits", "logits"):
        raise ConfigError(f"--no-pool applies to stage layers ({', '.join(layer_names(model)[2:])}), not {args.layer}")
    formats = ("npy", "safetensors") if args.format == "both" else (args.format,)
    settings = {
        "model": args.model,
        "layer": args.layer,
        "pool": not args.no_pool,
        "stride": str(stride),
        "crops": args.crops,
        "short": args.short,
        "precision": args.precision,
        "data_config": config.to_dict(),
    }
    todo = [v for v in videos if not is_done(out, v.key, settings, formats)]
    print(f"{len(videos)} videos: {len(videos) - len(todo)} already done, {len(todo)} to extract into {out}")
    dataset = FeatureWindows(
        todo, config, stride=stride, crops=args.crops, short=args.short, windows_per_chunk=args.batch_size
    )
    dataset.shard(trainer.global_rank, trainer.world_size)
    writer = FeatureFileWriter(
        out,
        settings=settings,
        formats=formats,
        all_videos=[(v.path, v.key) for v in videos],
        progress_total=len(dataset.my_videos()),
    )
    trainer.callbacks.append(writer)
    loader = DataLoader(dataset, batch_size=None, num_workers=args.num_workers)
    trainer.predict(task, dataloaders=loader, return_predictions=False)
    if trainer.is_global_zero:
        print(f"wrote {out / 'index.csv'}")
        _report_failures(out, videos)
    return 0


def _report_failures(out: Path, videos: Sequence[VideoEntry]) -> None:
    """Say how many videos gave no features (index.csv has each reason); none at all is an error (exit 2)."""
    import warnings

    from ..errors import DataError
    from ..tasks.features import read_record

    failed = []
    for video in videos:
        record = read_record(out, video.key) or {"status": "missing", "reason": "not processed"}
        if record["status"] != "ok" and not record["reason"].startswith("skipped"):  # --short skip is asked for
            failed.append(f"{video.path}: {record['reason']}")
    if failed and len(failed) == len(videos):
        raise DataError(
            f"no features written: none of the {len(videos)} videos could be read (first: {failed[0]}); "
            f"{out / 'index.csv'} lists each with its reason"
        )
    if failed:
        warnings.warn(
            f"{len(failed)} of {len(videos)} videos could not be read (first: {failed[0]}); "
            f"{out / 'index.csv'} lists each with its reason",
            UnreadVideosWarning,
            stacklevel=2,
        )


class UnreadVideosWarning(UserWarning):
    """Some videos gave no features (printed as one ``nlzoo extract-features: warning:`` line)."""


def _trainer(args: argparse.Namespace):  # -> pl.Trainer (Lightning is imported only when the command runs)
    """The Lightning Trainer for ``--accelerator/--devices/--num_nodes``; Lightning's refusal becomes one line."""
    import logging
    import warnings

    import pytorch_lightning as pl
    from pytorch_lightning.utilities.exceptions import MisconfigurationException

    from ..errors import ConfigError

    # Lightning's start-up notes (accelerators found, a logger tip) and two warnings that do not concern a
    # prediction loop over whole videos would bury the one-line reports of this command.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"Couldn't infer the batch indices fetched from your dataloader")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    try:
        return pl.Trainer(
            accelerator=args.accelerator,
            devices=int(args.devices) if args.devices.isdigit() else args.devices,
            num_nodes=args.num_nodes,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[],
        )
    except (MisconfigurationException, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"--accelerator {args.accelerator} --devices {args.devices} --num_nodes {args.num_nodes}: {first}"
        ) from None
