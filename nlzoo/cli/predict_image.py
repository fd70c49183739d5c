"""``nlzoo predict-image IMAGE --model NAME_OR_DIR``: run a pose model on an image and draw the skeleton.

Detectors (Faster / Mask / Keypoint R-CNN) draw boxes, masks, labels and keypoints instead (see
:mod:`nlzoo.cli.predict_detection`).

A top-down model sees one person per crop: give the persons' boxes with ``--box`` (repeatable), or the
whole image is taken as one person box. The drawing goes to ``--out`` (default ``IMAGE_pose.png``), at the
image's own size; the joints are printed as JSON lines (x, y, confidence per joint).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and Pillow load when the command runs, not for --help
    from torch import nn

    from ..zoo.config import DataConfig

HELP = "draw a pose model's predicted skeleton onto an image"

_LEFT, _RIGHT, _CENTRE = (255, 140, 0), (0, 160, 255), (80, 220, 80)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .argtypes import add_precision_argument

    parser.add_argument("image", help="the input image (any format Pillow reads)")
    parser.add_argument(
        "--model",
        required=True,
        help="a model folder, hf-hub:org/repo, arch.tag, arch (its default tag) or a PoseEstimator .ckpt",
    )
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
        "--threshold", type=float, default=0.2, help="hide joints (or detections) below this confidence (0.2)"
    )
    parser.add_argument("--no-flip", action="store_true", help="skip flip-test averaging")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    add_precision_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..data.image_dataset import read_image
    from ..errors import InputNotFoundError
    from ..inference.pose import check_boxes, draw_skeleton, predict_keypoints
    from ..models.skeleton import default_skeleton

    source = Path(args.image)
    if not source.is_file():
        raise InputNotFoundError(f"image {source} does not exist")
    if args.box:
        check_boxes(args.box)  # before loading (and perhaps downloading) a model
    image = read_image(str(source))  # RGB whatever the file's mode; its size is checked before decoding
    model, data_config = _load_model(args.model, device=args.device)
    if model.nlzoo_config.task != "pose-estimation":  # a detector: boxes, masks, keypoints of the whole image
        from .predict_detection import run_detection

        return run_detection(args, model, source, image)
    boxes = args.box or [[0.0, 0.0, float(image.width), float(image.height)]]
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


def _load_model(name: str, *, device: str) -> tuple[nn.Module, DataConfig]:
    """The pose model with weights (a bare name means its default tag, as for every inference command)."""
    from ..errors import ConfigError
    from ..inference.inputs import load_for_inference

    model = load_for_inference(name, device=device)
    config = getattr(model, "nlzoo_config", None)
    if config is None or config.task not in ("pose-estimation", "detection", "keypoints"):
        task = config.task if config is not None else "unknown"
        raise ConfigError(
            f"{name} is a {task} model; predict-image needs a pose model; see nlzoo.list_models(task='pose-estimation')"
            " (or a detector: task='detection' / 'keypoints')"
        )
    return model, config.data_config
