"""The Gradio page: a video tab and an image tab over the served models (see :func:`build_demo`).

Uploads reach the handlers as files in Gradio's upload folder; a handler refuses any other path, so no request
can make the server read a file it names. Examples are picked by name from files the app generated itself.
``nlzoo serve`` gives Gradio an upload folder of its own and removes it when it stops; on a Space, Gradio's
cache is swept every 10 minutes (files older than an hour). The examples folder goes when the process exits,
and attention pictures are encoded in memory. Requests queue and run one at a time: on a CPU one inference
at a time is fastest.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import DataError, NlzooError
from ..inference.inputs import default_device
from .examples import write_examples
from .limits import Limits
from .models import ServedModel, load_served
from .predict import Answer, analyse_image, classify_video

# The Space's models when build_demo() gets none and NLZOO_MODELS is unset (comma-separated names).
DEFAULT_MODELS = ("i3d_r50_nl",)
VIEW_CHOICES = [("3x1: fast on a CPU", "3x1"), ("10x3: the paper's test views", "10x3")]
TOP_K = 5
QUEUE_SIZE = 16
CACHE_SWEEP = (600, 3600)  # Gradio's delete_cache: every 10 min, files older than 1 h


def build_demo(
    models: Sequence[str] | None = None,
    *,
    device: str | None = None,
    precision: str = "auto",
    limits: Limits | None = None,
) -> gr.Blocks:
    """The page for ``models`` (names or folders, as for ``nlzoo.load``), each loaded once now.

    Args:
        models: what to serve; default: ``NLZOO_MODELS`` (comma-separated) or :data:`DEFAULT_MODELS`.
        device: torch device (default: CUDA when available, else CPU).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (see :mod:`nlzoo.precision`).
        limits: upload limits (default :class:`Limits`); pass ``launch_options(limits)`` to ``launch``.

    Returns:
        A queued :class:`gradio.Blocks`, ready for ``launch(**launch_options(limits))``.
    """
    from ..precision import resolve_precision

    if models is None:
        models = [m.strip() for m in os.environ.get("NLZOO_MODELS", ",".join(DEFAULT_MODELS)).split(",") if m.strip()]
    limits = limits or Limits()
    device = device or default_device()
    resolve_precision(precision, device)  # an unknown name fails now, not at the first request
    served = load_served(models, device=device)
    tabs = {m.tab for m in served.values()}
    example_dir = Path(tempfile.mkdtemp(prefix="nlzoo-serve-examples-"))
    examples = write_examples(example_dir, tabs)

    with gr.Blocks(title="nlzoo: non-local networks", delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(
            "# Non-local neural networks\nDrop a video or an image: the page shows what the network predicts and "
            "where one of its non-local blocks looks (Wang et al., CVPR 2018). "
            f"Limits: {limits.max_file_mb:g} MB per file, videos up to {limits.max_video_seconds:g} s, images up to "
            f"{limits.max_image_pixels / 1e6:.1f} megapixels."
        )
        if "video" in tabs:
            _video_tab(served, examples["video"], precision, limits)
        if "image" in tabs:
            _image_tab(served, examples["image"], precision, limits)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    weakref.finalize(demo, shutil.rmtree, example_dir, ignore_errors=True)
    return demo


def launch_options(limits: Limits | None = None) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: Gradio refuses larger uploads before they reach the disk."""
    return {"max_file_size": (limits or Limits()).max_file_bytes}


def _pickers(served: dict[str, ServedModel], tab: str) -> tuple[gr.Dropdown, gr.Dropdown, gr.Markdown]:
    names = [name for name, m in served.items() if m.tab == tab]
    first = served[names[0]]
    model = gr.Dropdown(names, value=names[0], label="model", interactive=len(names) > 1)
    block = gr.Dropdown(list(first.blocks), value=_first(first.blocks), label="non-local block to draw")
    card = gr.Markdown(first.card_facts())

    def picked(name: str) -> tuple[Any, str]:
        chosen = served[name]
        return gr.Dropdown(choices=list(chosen.blocks), value=_first(chosen.blocks)), chosen.card_facts()

    model.change(picked, model, [block, card], api_name=False)
    return model, block, card


def _video_tab(served: dict[str, ServedModel], examples: dict[str, Path], precision: str, limits: Limits) -> None:
    with gr.Tab("Video"), gr.Row():
        with gr.Column():
            video = gr.Video(label="video", sources=["upload"], include_audio=True)
            example = gr.Dropdown(list(examples), value=None, label="or an example (used when nothing is uploaded)")
            model, block, _ = _pickers(served, "video")
            views = gr.Radio(VIEW_CHOICES, value="3x1", label="test views (clips x crops)")
            run = gr.Button("Classify", variant="primary")
        with gr.Column():
            labels = gr.Label(num_top_classes=TOP_K, label="top-5 labels", elem_id="labels")
            attention = gr.HTML(elem_id="attention")
            timing = gr.Markdown(elem_id="timing")

    def classify(upload: str | None, example_name: str | None, name: str, view: str, block_name: str | None):
        with _shown_errors():
            path = _input_file(upload, example_name, examples)
            clips, crops = (int(v) for v in view.split("x"))
            answer = classify_video(
                served[name],
                path,
                views=(clips, crops),
                block=block_name or None,
                precision=precision,
                limits=limits,
                top_k=TOP_K,
            )
        return answer.scores, _attention_html(answer), _timing(answer)

    run.click(classify, [video, example, model, views, block], [labels, attention, timing], api_name="classify_video")


def _image_tab(served: dict[str, ServedModel], examples: dict[str, Path], precision: str, limits: Limits) -> None:
    with gr.Tab("Image"), gr.Row():
        with gr.Column():
            image = gr.File(label="image", file_count="single", elem_id="image-upload")
            example = gr.Dropdown(list(examples), value=None, label="or an example (used when nothing is uploaded)")
            model, block, _ = _pickers(served, "image")
            threshold = gr.Slider(0.0, 1.0, value=0.2, step=0.05, label="pose: hide joints below this confidence")
            run = gr.Button("Analyse", variant="primary")
        with gr.Column():
            drawn = gr.Image(label="prediction (pose: the skeleton)", type="pil", format="png", elem_id="drawn")
            labels = gr.Label(num_top_classes=TOP_K, label="top-5 labels (classifiers)", elem_id="image-labels")
            attention = gr.HTML(elem_id="image-attention")
            timing = gr.Markdown(elem_id="image-timing")

    def analyse(upload: str | None, example_name: str | None, name: str, block_name: str | None, threshold: float):
        with _shown_errors():
            path = _input_file(upload, example_name, examples)
            answer = analyse_image(
                served[name],
                path,
                block=block_name or None,
                precision=precision,
                limits=limits,
                top_k=TOP_K,
                threshold=threshold,
            )
        return answer.drawn, answer.scores, _attention_html(answer), _timing(answer)

    run.click(
        analyse, [image, example, model, block, threshold], [drawn, labels, attention, timing], api_name="analyse_image"
    )


def _first(items: Sequence[str]) -> str | None:
    return items[0] if items else None


def _input_file(upload: str | None, example_name: str | None, examples: dict[str, Path]) -> Path:
    """The file to run: an upload (only from Gradio's upload folder), else a generated example picked by name.

    Raises:
        DataError: nothing given, an unknown example, or a path outside the upload folder.
    """
    if upload:
        path = Path(upload).resolve()
        if not path.is_relative_to(Path(gr.utils.get_upload_folder()).resolve()) or not path.is_file():
            raise DataError("the page reads only files uploaded to it; upload the file instead of naming a path")
        return path
    if example_name:
        if example_name not in examples:
            raise DataError(f"unknown example {example_name!r}; pick one of: {', '.join(examples)}")
        return examples[example_name]
    raise DataError("upload a file or pick an example first")


@contextlib.contextmanager
def _shown_errors() -> Iterator[None]:
    """User-caused errors as one line in the page (without the server's folder names)."""
    try:
        yield
    except NlzooError as err:
        uploads = re.escape(str(Path(gr.utils.get_upload_folder()).resolve()))
        message = re.sub(uploads + r"/[^/\s]+/", "", str(err))
        raise gr.Error(message, duration=None, print_exception=False) from None


def _attention_html(answer: Answer) -> str:
    if answer.attention is None:
        return "<p>This model has no non-local blocks to draw.</p>"
    data = base64.b64encode(answer.attention).decode("ascii")
    where = "; ".join(",".join(map(str, q)) for q in answer.queries)
    axes = "t,y,x" if answer.attention_format == "gif" else "y,x"
    return (
        f'<figure><img id="attention-picture" alt="attention of {answer.block}" '
        f'src="data:image/{answer.attention_format};base64,{data}" style="max-width:100%">'
        f"<figcaption>Attention of <code>{answer.block}</code>: coloured heat maps show where each marked query "
        f"position ({axes} in the model's input: {where}) looks.</figcaption></figure>"
    )


def _timing(answer: Answer) -> str:
    predict, attention = answer.seconds
    return (
        f"Took {predict + attention:.2f} s: prediction {predict:.2f} s, attention {attention:.2f} s ({answer.detail})."
    )
