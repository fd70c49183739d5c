"""``nlzoo export CKPT OUT_DIR``: turn a training checkpoint into a model folder (then ``nlzoo push`` it)."""

from __future__ import annotations

import argparse

HELP = "export the model of an `nlzoo fit` checkpoint (.ckpt) as a model folder (config.json + model.safetensors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a .ckpt written by nlzoo fit (e.g. .../checkpoints/last.ckpt)")
    parser.add_argument("out_dir", help="the model folder to write")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..files import make_out_dir
    from ..tasks.export import model_from_checkpoint
    from ..zoo import save_pretrained

    make_out_dir(Path(args.out_dir).resolve().parent, flag="OUT_DIR's folder")  # before reading anything
    model = model_from_checkpoint(args.checkpoint)
    out = save_pretrained(model, args.out_dir)
    cfg = model.nlzoo_config
    print(f"wrote {out}: {cfg.architecture}, {cfg.num_classes} classes; load it with nlzoo.load({str(out)!r})")
    return 0
