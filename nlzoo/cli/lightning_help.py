"""The short ``nlzoo fit | validate | test | predict --help``, answered without importing Lightning.

The Lightning CLI builds its help from every class signature it knows (Trainer, tasks, data modules), which
takes seconds and hundreds of lines; ``--help-all`` shows that full text.
"""

from __future__ import annotations

SHORT_HELP = """usage: nlzoo {command} --config RECIPE.yaml [--SECTION.KEY VALUE ...]

{summary}

The Lightning CLI over nlzoo's tasks and data modules: a recipe (YAML) gives trainer, model and data, and
any key can be overridden on the command line with its dotted name.

common options:
  -c, --config RECIPE.yaml   a recipe, e.g. recipes/video/synthetic_c2d_r18_nl.yaml (repeatable; later wins)
  --print_config             print the resolved recipe and exit
  --trainer.KEY VALUE        any pytorch_lightning.Trainer argument (max_epochs, devices, precision, ...)
  --model.init_args.KEY V    an argument of the recipe's task (e.g. --model.init_args.lr 0.01)
  --data.init_args.KEY V     an argument of the recipe's data module (e.g. --data.init_args.batch_size 8)
  --ckpt_path PATH           {ckpt}
  --help-all                 every option, with types and defaults (loads Lightning: a few seconds)

recipes: recipes/video, recipes/image, recipes/pose. A misspelled key is named with the closest valid one.
SIGTERM or Ctrl-C during training saves a checkpoint, then exits 143 / 130; resume with --ckpt_path."""

SUMMARIES = {
    "fit": "Train a task from a recipe.",
    "validate": "Run the validation split on a trained checkpoint.",
    "test": "Run the test split (the paper's multi-view protocol for video) on a trained checkpoint.",
    "predict": "Run the predict split and return the model's outputs.",
}
CKPT = {
    "fit": "resume from this checkpoint (e.g. .../checkpoints/last.ckpt)",
    "validate": "the checkpoint to evaluate",
    "test": "the checkpoint to evaluate",
    "predict": "the checkpoint to predict with",
}


def short_help(command: str) -> str:
    """The short help of Lightning subcommand ``command``."""
    return SHORT_HELP.format(command=command, summary=SUMMARIES[command], ckpt=CKPT[command])
