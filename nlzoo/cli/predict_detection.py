"""The detection path of ``nlzoo predict-image``: run a Faster / Mask / Keypoint R-CNN, draw and print its output.

The whole image goes to the detector (it resizes and normalises itself); detections below ``--threshold``
are left out of the drawing and the JSON lines (one per detection: box x1 y1 x2 y2, label, score, keypoints).

``--precision auto`` runs detectors in fp32 wherever bf16 would be faster: the box regression's outputs are
image coordinates, which bf16 holds to 8 bits (4 px steps at 800 px). ``bf16`` / ``fp16`` given explicitly
run the network under autocast as asked; the outputs are returned in float32.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..explain.detections import draw_detections, keep_confident
from ..inference.pose import draw_skeleton
from ..models.skeleton import default_skeleton
from ..precision import inference_precision

DETECTION_TASKS = ("detection", "keypoints")


def run_detection(args: argparse.Namespace, model: nn.Module, source: Path, image: Image.Image) -> int:
    """Detect, draw to ``--out`` (default ``IMAGE_detections.png``) and print one JSON line per detection."""
    config = model.nlzoo_config  # backbone-only tags were refused by load_for_inference (check_trained)
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div(255)
    precision = "fp32" if args.precision == "auto" else args.precision
    with torch.no_grad(), inference_precision(precision, args.device):
        (output,) = model([pixels.to(args.device)])
    output = {k: (v.float() if v.is_floating_point() else v).cpu() for k, v in output.items()}
    output = keep_confident(output, args.threshold)
    canvas = draw_detections(image, output, config.label_names)
    if "keypoints" in output:
        skeleton = default_skeleton(output["keypoints"].shape[1])
        canvas = draw_skeleton(canvas, output["keypoints"], skeleton, threshold=0.0)
    out = Path(args.out) if args.out else source.with_name(f"{source.stem}_detections.png")
    canvas.save(out, format="PNG")
    names = config.label_names
    for i, box in enumerate(output["boxes"].tolist()):
        label = int(output["labels"][i])
        line = {
            "box": [round(v, 1) for v in box],
            "label": names[label] if names and label < len(names) else label,
            "score": round(float(output["scores"][i]), 3),
        }
        if "keypoints" in output:
            line["keypoints"] = [[round(v, 1) for v in joint[:2]] for joint in output["keypoints"][i].tolist()]
        print(json.dumps(line))
    print(f"wrote {out} ({len(output['boxes'])} detection(s) scoring >= {args.threshold})")
    return 0
