"""The ``nlzoo`` console script.

``fit | validate | test | predict`` are the Lightning CLI (see :mod:`nlzoo.cli.lightning`); the zoo
subcommands beside them each live in one module of this package exposing ``add_parser`` and ``run``.
Errors from user input print as one line plus a hint (``--traceback`` shows the full trace).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from .. import __version__

# Subcommand name -> module in this package (each defines HELP, add_arguments(parser) and run(args) -> int).
COMMANDS: dict[str, str] = {
    "convert": "convert",
    "models": "models",
    "export": "export",
    "push": "push",
    "predict-video": "predict_video",
    "predict-image": "predict_image",
    "explain": "explain",
    "demo": "demo",
    "serve": "serve",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
USER_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, OSError, RuntimeError)


def _command(name: str) -> ModuleType:
    return importlib.import_module(f".{COMMANDS[name]}", __name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlzoo",
        description="Non-local Neural Networks model zoo (Wang et al., CVPR 2018).",
        epilog="Training: nlzoo {fit,validate,test,predict} --config recipes/... (the Lightning CLI; "
        "`nlzoo fit --help` lists its options).",
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
        from .lightning import run_lightning_cli

        return run_lightning_cli(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(_command(args.command).run(args) or 0)
    except USER_ERRORS as err:
        if args.traceback or os.environ.get("NLZOO_TRACEBACK"):
            raise
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"nlzoo {args.command}: error: {message}", file=sys.stderr)
        print("(run with --traceback for details)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
