"""The ``nlzoo`` console script.

``fit | validate | test | predict`` are the Lightning CLI (see :mod:`nlzoo.cli.lightning`); the zoo
subcommands beside them each live in one module of this package exposing ``add_parser`` and ``run``.
Errors a user can cause (:class:`nlzoo.errors.NlzooError`) print as one line and exit 2 (``--traceback`` or
``NLZOO_TRACEBACK=1`` shows the trace); anything else is a bug and keeps its traceback (exit 1). nlzoo's own
warnings (a skipped file, a slow precision) print as one line too, the command still running. Only this
package's modules load for ``--help``: torch, Lightning and the zoo are imported when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

from .. import __version__
from ..errors import NlzooError

# Subcommand name -> module in this package (each defines HELP, add_arguments(parser) and run(args) -> int).
COMMANDS: dict[str, str] = {
    "convert": "convert",
    "models": "models",
    "export": "export",
    "push": "push",
    "release": "release",
    "predict-video": "predict_video",
    "predict-image": "predict_image",
    "explain": "explain",
    "extract-features": "extract_features",
    "export-onnx": "export_onnx",
    "demo": "demo",
    "serve": "serve",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# Commands whose process runs forward pass after forward pass: it keeps freed activation memory for reuse
# (nlzoo.inference.allocator; 1.2-1.4x faster video inference on CPU).
FORWARD_PASS_COMMANDS = frozenset({"predict-video", "predict-image", "explain", "extract-features", "serve"})


def _command(name: str) -> ModuleType:
    return importlib.import_module(f".{COMMANDS[name]}", __name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlzoo",
        description="Non-local Neural Networks model zoo (Wang et al., CVPR 2018).",
        epilog="Training: nlzoo {fit,validate,test,predict} --config recipes/... (the Lightning CLI; "
        "`nlzoo fit --help` summarises them, `--help-all` lists every option).",
    )
    parser.add_argument("--version", action="version", version=f"nlzoo {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"Lightning CLI: {name} a task from a recipe (--config)", add_help=False)
    for name in COMMANDS:
        module = _command(name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        # Also accepted after the command name; SUPPRESS keeps the top-level value when it is absent here.
        command.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        if argv[1:] in (["--help"], ["-h"]):
            from .lightning_help import short_help

            print(short_help(argv[0]))
            return 0
        from .lightning import run_lightning_cli

        return run_lightning_cli([a if a != "--help-all" else "--help" for a in argv])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in FORWARD_PASS_COMMANDS:
        from ..inference.allocator import keep_freed_memory

        keep_freed_memory()
    try:
        with warnings.catch_warnings():  # restores the display hook when the command returns
            warnings.showwarning = _one_line_warnings(args.command, warnings.showwarning)
            return int(_command(args.command).run(args) or 0)
    except NlzooError as err:
        if args.traceback or os.environ.get("NLZOO_TRACEBACK"):
            raise
        return report_user_error(args.command, err)
    except KeyboardInterrupt:  # Ctrl-C: the user's choice, not a bug; the shell's code for SIGINT
        print(f"nlzoo {args.command}: interrupted", file=sys.stderr)
        return 128 + 2


def _one_line_warnings(command: str, show: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints nlzoo's own warnings as ``nlzoo COMMAND: warning: MESSAGE`` (their
    message says what to do; the source line Python adds means nothing to a user) and leaves others to ``show``."""

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if category.__module__.split(".")[0] == "nlzoo":
            print(f"nlzoo {command}: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def report_user_error(command: str, err: Exception) -> int:
    """Print ``err`` as one line on stderr (the message says what to do) and return exit code 2.

    An error re-raised from a DataLoader worker carries the worker's traceback in its message; its last line
    is the original message.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if "Original Traceback (most recent call last):" in lines:
        raised = f"{type(err).__module__}.{type(err).__qualname__}: "
        start = max((i for i, line in enumerate(lines) if line.startswith(raised)), default=len(lines) - 1)
        lines = [lines[start].removeprefix(raised), *lines[start + 1 :]]
    message = " ".join(lines)
    print(f"nlzoo {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
