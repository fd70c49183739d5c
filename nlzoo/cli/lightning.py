"""``nlzoo fit | validate | test | predict``: the Lightning CLI over nlzoo's tasks and data modules.

Recipes give ``model`` and ``data`` as ``class_path`` + ``init_args`` (any LightningModule and
LightningDataModule); the data module's ``num_classes`` and ``label_names`` are linked into the model's
arguments, so a recipe states them once. YAML files may use omegaconf interpolation
(``${data.init_args.batch_size}``). Each run saves its resolved ``config.yaml`` beside its logs, and
``--print_config`` prints it without running.

Example:
    nlzoo fit --config recipes/video/synthetic_c2d_r18_nl.yaml --trainer.max_epochs 2
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pytorch_lightning import LightningDataModule, LightningModule
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

SUBCOMMANDS = ("fit", "validate", "test", "predict")
LINKED_FROM_DATA = ("num_classes", "label_names")


class NlzooCLI(LightningCLI):
    """LightningCLI with subclass mode for model and data, class facts linked from data to model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in LINKED_FROM_DATA:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")


def build_cli(args: list[str], *, run: bool = True) -> NlzooCLI:
    """Parse ``args`` (``["fit", "--config", ...]``) and run the subcommand.

    With ``run=False`` the arguments have no subcommand and the CLI only builds ``cli.trainer``,
    ``cli.model`` and ``cli.datamodule``.
    """
    omegaconf: dict[str, Any] = {"parser_mode": "omegaconf"}
    return NlzooCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if args == sys.argv[1:] else args,  # Lightning warns when given both
        run=run,
        parser_kwargs={"prog": "nlzoo", **omegaconf, **{name: dict(omegaconf) for name in SUBCOMMANDS}},
        save_config_kwargs={"overwrite": True},
    )


def run_lightning_cli(argv: list[str]) -> int:
    """Run ``nlzoo <subcommand> ...`` and return an exit code (argument errors print jsonargparse's message).

    User errors raised while setting up (a bad list file, an unknown model name) print as one line plus a
    hint; ``NLZOO_TRACEBACK=1`` shows the full trace.
    """
    from . import USER_ERRORS

    try:
        build_cli(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except USER_ERRORS as err:
        if os.environ.get("NLZOO_TRACEBACK"):
            raise
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"nlzoo {argv[0]}: error: {message}", file=sys.stderr)
        print("(set NLZOO_TRACEBACK=1 for details)", file=sys.stderr)
        return 2
    return 0
