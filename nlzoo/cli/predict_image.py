"""``nlzoo predict-image IMAGE --model NAME_OR_DIR``: classify an image, or draw a pose model's skeleton on it.

An image classifier prints its top-k classes (the image prepared as the image task's validation prepares it:
timm's evaluation transform with the model's interpolation and crop_pct). Detectors (Faster / Mask / Keypoint
R-CNN) draw boxes, masks, labels and keypoints (see :mod:`nlzoo.cli.predict_detection`).

A top-down pose model sees one person per crop: give the persons' boxes with ``--box`` (repeatable), or the
whole image is taken as one person box. The drawing goes to ``--out`` (default ``IMAGE_pose.png``), at the
image's own size; the joints are printed as JSON lines (x, y, confidence per joint).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and Pillow load when the command runs, not for --help
    from PIL import Image
    from torch import nn

    from ..zoo.config import DataConfig

HELP = "classify an image (top-5 labels), or draw a pose model's skeleton or a detector's boxes onto it"

EPILOG = """examples:
  nlzoo predict-image cat.jpg --model resnet50_nl            top-5 ImageNet classes
  nlzoo predict-image person.jpg --model simplebaseline_r50_nl --box 40 10 120 300
  nlzoo predict-image street.jpg --model maskrcnn_r50_fpn_nl --threshold 0.5
  nlzoo predict-image cat.jpg --model resnet50_nl --json    one JSON object (input, model, top_k)
--out, --box, --no-flip and --threshold draw pose models' and detectors' outputs (and print JSON lines);
--top-k and --json are for classifiers."""

# Options only one kind of model uses, with their defaults: the other kind refuses them when given.
_DRAWING_DEFAULTS = {"out": None, "box": None, "no_flip": False, "threshold": None}
_CLASSIFIER_DEFAULTS = {"top_k": None, "json": False}
_THRESHOLD, _TOP_K = 0.2, 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .argtypes import add_precision_argument, positive_int

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("image", help="the input image (any format Pillow reads)")
    parser.add_argument(
        "--model",
        required=True,
        help="a model folder, hf-hub:org/repo, arch.tag, arch (its default tag) or a .ckpt of nlzoo fit",
    )
    parser.add_argument("--top-k", type=positive_int, help=f"image classifiers: how many classes to show ({_TOP_K})")
    parser.add_argument("--json", action="store_true", help="image classifiers: print one JSON object")
    parser.add_argument("--out", help="output PNG (default: IMAGE_pose.png beside the input)")
    parser.add_argument(
        "--box",
        nargs=4,
        type=float,
        action="append",
        metavar=("X", "Y", "W", "H"),
        help="a person box in pixels, W and H > 0 (repeat for several persons); default: the whole image",
    )
    parser.add_argument(
        "--threshold", type=float, help=f"hide joints (or detections) below this confidence ({_THRESHOLD})"
    )
    parser.add_argument("--no-flip", action="store_true", help="skip flip-test averaging")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputNotFoundError
    from ..files import check_out_file
    from ..inference.inputs import default_device, read_photo
    from ..inference.pose import check_boxes, draw_skeleton, predict_keypoints, whole_image_box
    from ..models.skeleton import default_skeleton

    source = Path(args.image)
    if source.is_dir():
        raise InputNotFoundError(f"image {source} is a directory; give one image file")
    if not source.is_file():
        raise InputNotFoundError(f"image {source} does not exist")
    if args.out:
        check_out_file(args.out)  # before the work whose result it is to hold
    image = read_photo(source)  # RGB and upright whatever the file's mode; its size is checked before decoding
    if args.box:
        check_boxes(args.box, image.size)  # before loading (and perhaps downloading) a model
    args.device = args.device or default_device()
    model, data_config = _load_model(args.model, device=args.device)
    if model.nlzoo_config.task == "image-classification":
        return _classify(args, model, image)
    _refuse(args, _CLASSIFIER_DEFAULTS, f"for image classifiers; {args.model} draws its output to --out")
    args.threshold = _THRESHOLD if args.threshold is None else args.threshold
    if model.nlzoo_config.task != "pose-estimation":  # a detector: boxes, masks, keypoints of the whole image
        from .predict_detection import run_detection

        return run_detection(args, model, source, image)
    boxes = args.box or whole_image_box(image)
    skeleton = default_skeleton(int(model.num_classes))
    keypoints = predict_keypoints(
        model,
        image,
        boxes,
        data_config,
        skeleton=None if args.no_flip else skeleton,
        device=args.device,
        precision=args.precision,
    )
    out = Path(args.out) if args.out else source.with_name(f"{source.stem}_pose.png")
    draw_skeleton(image, keypoints, skeleton, threshold=args.threshold).save(out, format="PNG")
    for box, person in zip(boxes, keypoints.tolist(), strict=True):
        print(json.dumps({"box": box, "keypoints": [[round(v, 2) for v in joint] for joint in person]}))
    print(f"wrote {out} ({len(boxes)} person(s), {keypoints.shape[1]} joints)")
    return 0


def _classify(args: argparse.Namespace, model: nn.Module, image: Image.Image) -> int:
    """An image classifier's top-k classes, the image prepared as the image task's validation prepares it."""
    from rich.console import Console
    from timm.data import DEFAULT_CROP_PCT

    from ..inference.inputs import classifier_input
    from ..inference.scores import class_scores
    from .tables import print_top_k, print_top_k_json

    _refuse(
        args,
        _DRAWING_DEFAULTS,
        f"for pose models and detectors; {args.model} is an image classifier, which prints its top-k classes",
    )
    cfg = model.nlzoo_config
    scores = class_scores(model, classifier_input(image, cfg.data_config), precision=args.precision)
    top_k = args.top_k or _TOP_K
    if args.json:
        print_top_k_json(scores, cfg.label_names, top_k, input=args.image, model=cfg.architecture)
        return 0
    d = cfg.data_config
    console, err = Console(), Console(stderr=True)
    console.print(
        f"{args.image}: {cfg.architecture}, {d.crop_size[0]}x{d.crop_size[1]} centre crop "
        f"(crop_pct {d.crop_pct or DEFAULT_CROP_PCT}, {d.interpolation})",
        highlight=False,
        soft_wrap=True,
    )
    print_top_k(console, err, scores, cfg.label_names, top_k)
    return 0


def _refuse(args: argparse.Namespace, defaults: dict[str, object], why: str) -> None:
    """One error naming every option in ``defaults`` that was given, and why this model has no use for it."""
    from ..errors import ConfigError

    given = [name for name, default in defaults.items() if getattr(args, name) != default]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(f"{options}: {why}; leave them out")


def _load_model(name: str, *, device: str) -> tuple[nn.Module, DataConfig]:
    """An image model with weights (a bare name means its default tag, as for every inference command)."""
    from ..errors import ConfigError
    from ..inference.inputs import load_for_inference

    model = load_for_inference(name, device=device)
    config = getattr(model, "nlzoo_config", None)
    if config is None or config.task not in ("image-classification", "pose-estimation", "detection", "keypoints"):
        task = config.task if config is not None else "unknown"
        raise ConfigError(
            f"{name} is a {task} model; predict-image takes image classifiers, pose models and detectors "
            f"(nlzoo models --task image-classification); classify a video with `nlzoo predict-video VIDEO "
            f"--model {name}`"
        )
    return model, config.data_config
