"""``nlzoo convert``: a PySlowFast / Caffe2 / mmaction2 / pytorchvideo / mmdetection checkpoint -> a model folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# nlzoo.zoo.converters.SOURCES' names, spelled out so that --help needs no torch (a test keeps them equal).
SOURCE_NAMES = ("pyslowfast", "caffe2", "mmaction2", "pytorchvideo", "mmdetection")

HELP = "convert a PySlowFast, Caffe2, mmaction2, pytorchvideo or mmdetection checkpoint into an nlzoo model folder"

EPILOG = """examples:
  nlzoo convert --model i3d_r50_nl.kinetics400 I3D_NLN_8x8_R50.pkl i3d_r50_nl_k400   (format detected)
  nlzoo convert --source pytorchvideo --model i3d_r50 I3D_8x8_R50.pyth i3d_r50_k400
Published checkpoints are registry tags (nlzoo.model_info("i3d_r50_nl").tags): naming the tag applies the
architecture settings, labels and provenance the weights need. Then: nlzoo.load("./i3d_r50_nl_k400")."""


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"stem_pool_padding\": 0}}'; got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--source",
        default=None,
        choices=SOURCE_NAMES,
        help="the framework that wrote INPUT (pyslowfast .pyth, the authors' caffe2 .pkl, mmaction2 .pth, "
        "pytorchvideo hub .pyth, mmdetection Mask R-CNN .pth); default: detected from the file's content",
    )
    parser.add_argument(
        "--model", required=True, help="architecture (i3d_r50_nl) or, for a published checkpoint, ARCH.TAG"
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="the checkpoint file (.pyth, .pkl, .pth)")
    parser.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR", help="the model folder to write")
    parser.add_argument(
        "--model-args",
        type=_json_object,
        default={},
        metavar="JSON",
        help='extra architecture arguments, e.g. \'{"nonlocal_args": {"instantiation": "dot_product"}}\'',
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..zoo.converters import convert_checkpoint
    from ..zoo.folder import read_folder

    console = Console(stderr=True)

    def step(text: str) -> None:
        if text.startswith("detected "):
            print(text)
        status.update(f"{text} ...")

    with console.status("converting", spinner="dots") as status:
        out = convert_checkpoint(args.source, args.model, args.input, args.output_dir, progress=step, **args.model_args)
    cfg, _ = read_folder(out)
    conversion = cfg.provenance["conversion"]
    name = cfg.architecture + (f".{cfg.pretrained_tag}" if cfg.pretrained_tag else "")
    print(f"wrote {out} ({name}, {cfg.num_classes} classes)")
    print(f"  from {conversion['source_format']} {conversion['input_file']} sha256 {conversion['input_sha256']}")
    for field, value in (conversion.get("settings_from_file") or {}).items():
        print(f"  decided by the file's {field} = {value!r}")
    print(f"  model_args {json.dumps(cfg.model_args)}")
    if not cfg.pretrained_tag:
        print("  no registry tag: architecture and data settings are the defaults plus --model-args")
    print(f"load it with nlzoo.load({str(out) if '/' in str(out) else './' + str(out)!r})")
    return 0
