"""``nlzoo fit | validate | test | predict``: the Lightning CLI over nlzoo's tasks and data modules.

Recipes give ``model`` and ``data`` as ``class_path`` + ``init_args`` (any LightningModule and
LightningDataModule); the data module's ``num_classes`` and ``label_names`` are linked into the model's
arguments, so a recipe states them once. YAML files may use omegaconf interpolation
(``${data.init_args.batch_size}``). Each run saves its resolved ``config.yaml`` beside its logs, and
``--print_config`` prints it without running.

A recipe or flag the parser rejects prints its cause in one line (with the closest valid key for a
misspelling), not the usage text. SIGTERM (a scheduler's stop) or Ctrl-C during training saves a checkpoint at
the next batch boundary, then the command exits 143 / 130 so the scheduler sees the run did not finish; the
checkpoint resumes with ``--ckpt_path``.

Example:
    nlzoo fit --config recipes/video/synthetic_c2d_r18_nl.yaml --trainer.max_epochs 2
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from pytorch_lightning import Callback, LightningDataModule, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from ..errors import ConfigError, InputNotFoundError, NlzooError, WeightsError

SUBCOMMANDS = ("fit", "validate", "test", "predict")
LINKED_FROM_DATA = ("num_classes", "label_names")


class CheckpointOnInterrupt(Callback):
    """Stop training cleanly on SIGTERM or the first Ctrl-C and save a checkpoint; remember the signal.

    Lightning turns SIGTERM into a stop at the next batch boundary (``SIGTERMException``); the first Ctrl-C is
    routed the same way, so the saved state is never half an optimiser step (a second Ctrl-C stops at once,
    without saving). The checkpoint is what each ModelCheckpoint saves on an exception, ``last.ckpt`` included.
    """

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self.saved: list[str] = []
        self._previous_sigint: Any = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        stop = signal.getsignal(signal.SIGTERM)  # Lightning's handler, registered for this run
        if threading.current_thread() is threading.main_thread() and callable(stop):

            def first_ctrl_c(signum: int, frame: FrameType | None) -> None:
                self.signal = signal.SIGINT
                signal.signal(signal.SIGINT, signal.default_int_handler)
                stop(signum, frame)

            self._previous_sigint = signal.signal(signal.SIGINT, first_ctrl_c)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):  # a second Ctrl-C: mid-step, nothing consistent to save
            self.signal = signal.SIGINT
            return
        if not isinstance(exception, SIGTERMException):
            return  # a bug or resource failure: its traceback matters, not a checkpoint of a broken state
        self.signal = self.signal or signal.SIGTERM
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and not callback.save_on_exception:
                callback.save_on_exception = True  # Lightning's own save path (ModelCheckpoint.on_exception)
                try:
                    callback.on_exception(trainer, pl_module, exception)
                finally:
                    callback.save_on_exception = False
            if isinstance(callback, ModelCheckpoint) and callback.last_model_path:
                self.saved.append(callback.last_model_path)


class NlzooCLI(LightningCLI):
    """LightningCLI with subclass mode for model and data, class facts linked from data to model."""

    def __init__(self, *args: Any, interrupt: CheckpointOnInterrupt | None = None, **kwargs: Any) -> None:
        self.interrupt = interrupt
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in LINKED_FROM_DATA:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as err:
            command = next((a for a in args or sys.argv[1:] if a in SUBCOMMANDS), None)
            keys = [a.dest for a in self._subcommand_parsers[command]._actions] if command else []
            raise ConfigError(recipe_error_message(str(err), keys)) from err

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as err:  # jsonargparse wraps a class's own error in a ValueError listing subtypes
            cause = _nlzoo_cause(err)
            if cause is None:
                raise
            raise cause from err

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if "weights_only" in kwargs and kwargs["weights_only"] is None:
            kwargs["weights_only"] = True  # --ckpt_path is data, also for URLs (where Lightning defaults to False)
        if subcommand != "fit" and kwargs.get("ckpt_path") in ("best", "last"):
            kwargs["ckpt_path"] = run_checkpoint(kwargs["ckpt_path"], self.trainer)
        check_ckpt_path(kwargs.get("ckpt_path"))
        return kwargs

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        if self.interrupt is not None:
            trainer.callbacks.append(self.interrupt)
        return trainer


def _nlzoo_cause(err: BaseException) -> NlzooError | None:
    """The NlzooError that ``err`` was raised from (its ``__cause__`` / ``__context__`` chain), if any."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, NlzooError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def run_checkpoint(key: str, trainer: Trainer) -> str:
    """``--ckpt_path best`` / ``last`` for ``validate``, ``test`` or ``predict``: the file of the newest earlier run.

    Lightning resolves these keys only right after ``fit`` in the same process: a new ``test`` raised a
    ValueError for ``best``, and for ``last`` warned and evaluated the untrained network with exit code 0. The
    run is found where the trainer's ``ModelCheckpoint`` saves (its ``dirpath``, else every ``checkpoints``
    folder under ``default_root_dir``, newest first); ``best`` is the best file that run's ``ModelCheckpoint``
    recorded in its last checkpoint.

    Raises:
        ConfigError: no such checkpoint; the message names a file to pass instead where there is one.
    """
    callback = trainer.checkpoint_callback
    dirpath = callback.dirpath if isinstance(callback, ModelCheckpoint) else None
    root = Path(dirpath or trainer.default_root_dir)
    folders = [root] if dirpath else sorted(root.glob("**/checkpoints"), key=_newest_change, reverse=True)
    saved = next((files for folder in folders if (files := sorted(folder.glob("*.ckpt"), key=_newest_change))), [])
    lasts = [c for c in saved if c.name.startswith("last")]
    found = lasts[-1] if key == "last" and lasts else None
    if key == "best" and saved:
        found = _recorded_best(lasts[-1] if lasts else saved[-1], callback)
    if found is not None:
        return str(found)
    hint = f"; pass a checkpoint file, e.g. --ckpt_path {saved[-1]}" if saved else "; pass a checkpoint file"
    raise ConfigError(
        f"--ckpt_path {key}: no {key} checkpoint of an earlier run under {root} (Lightning knows '{key}' only "
        f"right after fit in the same command){hint}"
    )


def _newest_change(path: Path) -> float:
    """A file's modification time; a folder's: that of its newest checkpoint (0 without one)."""
    if path.is_file():
        return path.stat().st_mtime
    return max((c.stat().st_mtime for c in path.glob("*.ckpt")), default=0.0)


def _recorded_best(checkpoint: Path, callback: Any) -> Path | None:
    """The best checkpoint the run's ModelCheckpoint recorded in ``checkpoint`` (found beside it if the run's
    folder moved), or None."""
    import pickle

    import torch

    try:
        states = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True).get("callbacks", {})
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):  # damaged: the error names other files
        return None
    state = states.get(callback.state_key) if isinstance(callback, ModelCheckpoint) else None
    paths = [s.get("best_model_path") for s in ([state] if state else states.values()) if isinstance(s, dict)]
    for path in filter(None, paths):
        for candidate in (Path(path), checkpoint.parent / Path(path).name):
            if candidate.is_file():
                return candidate
    return None


def check_ckpt_path(ckpt_path: Any) -> None:
    """A local ``--ckpt_path`` must be a non-empty file (Lightning's own keys and URLs pass through).

    Raises:
        InputNotFoundError: no such file; WeightsError: an empty file (a run killed while saving it).
    """
    if not isinstance(ckpt_path, str) or ckpt_path in ("last", "best", "hpc", "registry") or "://" in ckpt_path:
        return
    path = Path(ckpt_path)
    if not path.is_file():
        raise InputNotFoundError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise WeightsError(f"--ckpt_path {ckpt_path} is empty (0 bytes); use an earlier checkpoint")


def recipe_error_message(message: str, keys: list[str]) -> str:
    """jsonargparse's multi-line complaint as one line: the cause, and the closest valid key for an unknown one."""
    unknown = re.search(r"does not accept option '([\w.]+)'", message)
    if unknown:
        key = unknown.group(1)
        return f"unknown key {key!r} (in the recipe or a flag).{_closest(key, [k for k in keys if '.help' not in k])}"
    option = re.search(
        r"Parser key \"([\w.]+)\".*?class_path '([\w.]+)':\s*Option '(\w+)' is not accepted", message, re.S
    )
    if option:
        group, class_path, name = option.groups()
        module_name, _, class_name = class_path.rpartition(".")
        cls = getattr(sys.modules.get(module_name), class_name, None)  # jsonargparse imported it already
        return f"{class_path} has no argument {name!r} ({group}.init_args.{name}).{_closest(name, _init_args(cls))}"
    lines = [
        line.strip() for line in message.splitlines() if line.strip() and not line.strip().startswith("Given value")
    ]
    hint = " Give a recipe: nlzoo fit --config recipes/<task>/<recipe>.yaml." if "are required" in message else ""
    return " ".join(lines).rstrip(".") + "." + hint + " (`--help-all` lists every option)"


def _init_args(cls: Any) -> list[str]:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the base classes (as jsonargparse)."""
    names: list[str] = []
    for klass in getattr(cls, "__mro__", ()):
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def _closest(key: str, keys: list[str]) -> str:
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else " (`--help-all` lists the valid keys)"


def build_cli(args: list[str], *, run: bool = True, interrupt: CheckpointOnInterrupt | None = None) -> NlzooCLI:
    """Parse ``args`` (``["fit", "--config", ...]``) and run the subcommand.

    With ``run=False`` the arguments have no subcommand and the CLI only builds ``cli.trainer``,
    ``cli.model`` and ``cli.datamodule``.
    """
    options: dict[str, Any] = {"parser_mode": "omegaconf", "exit_on_error": False}
    return NlzooCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if args == sys.argv[1:] else args,  # Lightning warns when given both
        run=run,
        parser_kwargs={"prog": "nlzoo", **options, **{name: dict(options) for name in SUBCOMMANDS}},
        save_config_kwargs={"overwrite": True},
        interrupt=interrupt,
    )


def run_lightning_cli(argv: list[str]) -> int:
    """Run ``nlzoo <subcommand> ...`` and return an exit code.

    User errors (a recipe key, a bad list file, an unknown model name) print as one line, exit 2
    (``NLZOO_TRACEBACK=1`` shows the trace). After SIGTERM / SIGINT the checkpoint is saved and the exit code
    is 128 + the signal's number (143 / 130).
    """
    from . import report_user_error

    interrupt = CheckpointOnInterrupt()
    try:
        build_cli(argv, interrupt=interrupt)
    except SystemExit as done:
        if interrupt.signal is None:
            return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except (NlzooError, MisconfigurationException) as err:  # Lightning's exception for a misused setting
        if os.environ.get("NLZOO_TRACEBACK"):
            raise
        return report_user_error(argv[0], err)
    if interrupt.signal is None:
        return 0
    saved = f"saved {', '.join(interrupt.saved)}; resume with --ckpt_path" if interrupt.saved else "no checkpoint"
    print(f"nlzoo {argv[0]}: interrupted by {interrupt.signal.name}; {saved}", file=sys.stderr)
    return 128 + int(interrupt.signal)
