"""argparse types shared by the commands; torch-free, so that ``nlzoo CMD --help`` stays fast."""

from __future__ import annotations

import argparse


def parse_views(text: str) -> tuple[int, int]:
    """``"10x3"`` -> (10, 3): temporal clips x spatial crops (an argparse type)."""
    clips, sep, crops = text.lower().partition("x")
    if not sep or not clips.isdigit() or not crops.isdigit() or int(clips) < 1 or int(crops) < 1:
        raise argparse.ArgumentTypeError(f"views must look like CLIPSxCROPS, e.g. 10x3 or 1x1; got {text!r}")
    return int(clips), int(crops)
