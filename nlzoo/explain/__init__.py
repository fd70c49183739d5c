"""Attention maps of non-local blocks (the paper's Figure 3): which positions a query position looks at."""

from .attention import AttentionMap, attention_map, block_input, find_block, peak_queries, pixel_to_cell
from .render import render_animation, render_figure, save_gif

__all__ = [
    "AttentionMap",
    "attention_map",
    "block_input",
    "find_block",
    "peak_queries",
    "pixel_to_cell",
    "render_animation",
    "render_figure",
    "save_gif",
]
