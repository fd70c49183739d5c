"""``nlzoo predict-image IMAGE --model NAME_OR_DIR``: run a pose model on an image and draw the skeleton.

A top-down model sees one person per crop: give the persons' boxes with ``--box`` (repeatable), or the
whole image is taken as one person box. The drawing goes to ``--out`` (default ``IMAGE_pose.png``), at the
image's own size; the joints are printed as JSON lines (x, y, confidence per joint).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image
from torch import nn

from ..inference.pose import draw_skeleton, predict_keypoints
from ..models.skeleton import default_skeleton
from ..tasks.export import model_from_checkpoint
from ..zoo import load
from ..zoo.config import DataConfig

HELP = "draw a pose model's predicted skeleton onto an image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the input image (any format Pillow reads)")
    parser.add_argument(
        "--model", required=True, help="a zoo name, model folder, hf-hub:org/repo, or a PoseEstimator .ckpt"
    )
    parser.add_argument("--out", help="output PNG (default: IMAGE_pose.png beside the input)")
    parser.add_argument(
        "--box",
        nargs=4,
        type=float,
        action="append",
        metavar=("X", "Y", "W", "H"),
        help="a person box in pixels (repeat for several persons); default: the whole image",
    )
    parser.add_argument("--threshold", type=float, default=0.2, help="hide joints below this confidence (0.2)")
    parser.add_argument("--no-flip", action="store_true", help="skip flip-test averaging")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")


def run(args: argparse.Namespace) -> int:
    source = Path(args.image)
    if not source.is_file():
        raise FileNotFoundError(f"image {source} does not exist")
    model, data_config = _load_model(args.model)
    model = model.to(args.device).eval()
    with Image.open(source) as raw:
        image = raw.convert("RGB")
    boxes = args.box or [[0.0, 0.0, float(image.width), float(image.height)]]
    skeleton = default_skeleton(int(model.num_classes))
    keypoints = predict_keypoints(
        model, image, boxes, data_config, skeleton=None if args.no_flip else skeleton, device=args.device
    )
    out = Path(args.out) if args.out else source.with_name(f"{source.stem}_pose.png")
    draw_skeleton(image, keypoints, skeleton, threshold=args.threshold).save(out, format="PNG")
    for box, person in zip(boxes, keypoints.tolist(), strict=True):
        print(json.dumps({"box": box, "keypoints": [[round(v, 2) for v in joint] for joint in person]}))
    print(f"wrote {out} ({len(boxes)} person(s), {keypoints.shape[1]} joints)")
    return 0


def _load_model(name: str) -> tuple[nn.Module, DataConfig]:
    model = model_from_checkpoint(name) if name.endswith(".ckpt") else load(name)
    config = getattr(model, "nlzoo_config", None)
    if config is None or config.task != "pose-estimation":
        task = config.task if config is not None else "unknown"
        raise ValueError(
            f"{name} is a {task} model; predict-image needs a pose model; see nlzoo.list_models(task='pose-estimation')"
        )
    return model, config.data_config
