"""``nlzoo serve``: the web page (Gradio) over one or more models, for a browser on this machine or the network."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile

HELP = "serve a web page: drop a video or image, see the top-5 labels and where the non-local blocks look"

EPILOG = """examples:
  nlzoo serve --model outputs/demo/models/c2d_r18_nl
  nlzoo serve --model i3d_r50_nl --model simplebaseline_r50_nl --host 0.0.0.0 --port 7860
Needs the app extra: pip install "nlzoo[app]". Every model is loaded once at start-up; requests queue and
run one at a time. Videos default to 3x1 views (a switch on the page selects the paper's 10x3)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME_OR_DIR",
        help="model folder, hf-hub:org/repo, arch.tag or arch (repeat to serve several; the page has a picker)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine)")
    parser.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available, else cpu)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (default auto: bf16 where fast)")
    parser.add_argument("--max-file-mb", type=float, default=50.0, help="largest upload in MiB (default 50)")
    parser.add_argument("--max-video-seconds", type=float, default=60.0, help="longest video (default 60 s)")
    parser.add_argument(
        "--max-image-pixels", type=int, default=4096 * 4096, help="largest image, width x height (default 4096^2)"
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    # Uploads go to a folder of this server's own, removed when it stops (Gradio's cache would outlive it).
    base = os.environ.get("GRADIO_TEMP_DIR") or None
    if base:
        os.makedirs(base, exist_ok=True)
    uploads = tempfile.mkdtemp(prefix="nlzoo-serve-uploads-", dir=base)
    os.environ["GRADIO_TEMP_DIR"] = uploads
    try:
        try:
            from ..app import Limits, build_demo, launch_options
        except ImportError as err:
            raise ConfigError(f'nlzoo serve needs Gradio ({err}); install it with: pip install "nlzoo[app]"') from None
        limits = Limits(args.max_file_mb, args.max_video_seconds, args.max_image_pixels)
        demo = build_demo(args.model, device=args.device, precision=args.precision, limits=limits)
        # SIGTERM (a service manager, a test) stops the server like Ctrl-C: the finally clauses run.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            demo.launch(
                server_name=args.host, server_port=args.port, show_error=True, quiet=True, **launch_options(limits)
            )
        except KeyboardInterrupt:
            pass
        finally:
            demo.close()
    finally:
        shutil.rmtree(uploads, ignore_errors=True)
    return 0
