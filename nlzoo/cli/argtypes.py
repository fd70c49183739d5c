"""argparse types shared by the commands; torch-free, so that ``nlzoo CMD --help`` stays fast."""

from __future__ import annotations

import argparse


def parse_views(text: str) -> tuple[int, int]:
    """``"10x3"`` -> (10, 3): temporal clips x spatial crops (an argparse type)."""
    clips, sep, crops = text.lower().partition("x")
    if not sep or not clips.isdigit() or not crops.isdigit():
        raise argparse.ArgumentTypeError(f"views must look like CLIPSxCROPS, e.g. 10x3 or 1x1; got {text!r}")
    if int(clips) < 1 or int(crops) < 1:
        raise argparse.ArgumentTypeError(f"views need at least 1 clip and 1 crop, e.g. 10x3 or 1x1; got {text!r}")
    return int(clips), int(crops)


# nlzoo.precision.PRECISIONS, spelled out so that --help needs no torch.
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")


def positive_int(text: str) -> int:
    """An integer >= 1 (an argparse type: a wrong value fails at parse time, naming its option)."""
    if not text.strip().lstrip("+").isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1; got {text!r}")
    return int(text)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--precision`` option every inference command shares (resolved by :mod:`nlzoo.precision`)."""
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="auto (default): bf16 autocast where the CPU/GPU runs it faster than fp32, else fp32",
    )
