"""What one request computes, through the same helpers as ``predict-video``, ``predict-image`` and ``explain``.

Nothing here knows about Gradio: :mod:`nlzoo.app.page` calls these with a file and shows the answer. The
attention picture is drawn from the very input the prediction used (the centre clip, the centre crop, the
person crop) and encoded in memory: a request leaves no files behind.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass

import torch
from PIL import Image

from ..explain import save_gif
from ..inference.attention import draw_attention
from ..inference.inputs import read_image, read_photo, read_video_views
from ..inference.labels import top_classes
from ..inference.pose import draw_skeleton, person_crops, predict_keypoints, whole_image_box
from ..inference.scores import class_scores
from ..models.skeleton import default_skeleton
from ..precision import inference_precision
from .limits import Limits, check_image, check_upload, check_video
from .models import ServedModel


@dataclass(frozen=True)
class Answer:
    """What the page shows for one file.

    Attributes:
        scores: the top classes, label -> score (best first); ``None`` for pose models.
        drawn: the image with the predicted skeleton (pose models), else ``None``.
        attention: the chosen block's attention (GIF for video, PNG for images), ``None`` without blocks.
        attention_format: ``"gif"`` or ``"png"``.
        block: the block drawn, and ``queries`` its query positions in the model's input (t,y,x or y,x).
        seconds: wall time of the prediction and, separately, of the attention picture.
        detail: one line on what ran (views, precision).
    """

    scores: dict[str, float] | None
    drawn: Image.Image | None
    attention: bytes | None
    attention_format: str
    block: str | None
    queries: list[tuple[int, ...]]
    seconds: tuple[float, float]
    detail: str


def classify_video(
    served: ServedModel,
    path: str | os.PathLike[str],
    *,
    views: tuple[int, int],
    block: str | None,
    precision: str,
    limits: Limits,
    top_k: int = 5,
) -> Answer:
    """Top-k labels of a video over ``views`` (clips x crops), and the attention GIF of ``block``.

    Raises:
        DataError: not a video file the page takes, or one FFmpeg cannot read.
        LimitError: too large or too long.
    """
    check_upload(path, kinds=("video",), limits=limits)
    check_video(path, limits)
    cfg = served.config
    clips, crops = views
    device = next(served.model.parameters()).device
    start = time.perf_counter()
    with inference_precision(precision, device) as resolved:
        clip_views = read_video_views(path, cfg.data_config, num_clips=clips, num_crops=crops)
        scores = class_scores(served.model, clip_views, precision=resolved)
        predicted = time.perf_counter()
        centre = read_video_views(path, cfg.data_config, num_clips=1, num_crops=1) if served.blocks else None
        attention, queries = _attention(served, centre, block, resolved)
    detail = f"{clips}x{crops} views of {cfg.data_config.num_frames} frames, {resolved} on {device}"
    return Answer(
        _top(scores, cfg.label_names, top_k),
        None,
        attention,
        "gif",
        block or (served.blocks[0] if served.blocks else None),
        queries,
        (predicted - start, time.perf_counter() - predicted),
        detail,
    )


def analyse_image(
    served: ServedModel,
    path: str | os.PathLike[str],
    *,
    block: str | None,
    precision: str,
    limits: Limits,
    top_k: int = 5,
    threshold: float = 0.2,
) -> Answer:
    """Top-k labels (image classifiers) or the drawn skeleton (pose models, the whole image as one person box),
    and the attention picture of ``block``.

    Raises:
        DataError: not an image file the page takes, or one Pillow cannot read.
        LimitError: too large, or more pixels than the limit.
    """
    check_upload(path, kinds=("image",), limits=limits)
    check_image(path, limits)
    cfg = served.config
    device = next(served.model.parameters()).device
    start = time.perf_counter()
    scores, drawn = None, None
    with inference_precision(precision, device) as resolved:
        if cfg.task == "pose-estimation":
            image = read_photo(path)
            skeleton = default_skeleton(cfg.num_classes)
            box = whole_image_box(image)
            keypoints = predict_keypoints(
                served.model, image, box, cfg.data_config, skeleton=skeleton, device=device, precision=resolved
            )
            drawn = draw_skeleton(image, keypoints.float(), skeleton, threshold=threshold)
            x = person_crops(image, box, cfg.data_config)[0]
        else:
            x = read_image(path, cfg.data_config)
            scores = _top(class_scores(served.model, x, precision=resolved), cfg.label_names, top_k)
        predicted = time.perf_counter()
        attention, queries = _attention(served, x, block, resolved)
    return Answer(
        scores,
        drawn,
        attention,
        "png",
        block or (served.blocks[0] if served.blocks else None),
        queries,
        (predicted - start, time.perf_counter() - predicted),
        f"{resolved} on {device}",
    )


def _top(scores: torch.Tensor, names: list[str] | None, k: int) -> dict[str, float]:
    return {row["label"]: float(row["score"]) for row in top_classes(scores, names, k)}


def _attention(
    served: ServedModel, x: torch.Tensor | None, block: str | None, precision: str
) -> tuple[bytes | None, list[tuple[int, ...]]]:
    """What ``explain`` draws for input ``x`` (GIF for clips, PNG for images) as bytes; ``None`` without blocks."""
    if not served.blocks or x is None:
        return None, []
    pictures = draw_attention(
        served.model, x, served.config.data_config, block=block, panel_height=160, precision=precision
    )
    buffer = io.BytesIO()
    if pictures.animation is not None:
        save_gif(pictures.animation, buffer)
    else:
        pictures.figure.save(buffer, format="PNG")
    return buffer.getvalue(), pictures.queries
