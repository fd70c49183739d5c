"""Layers: the non-local block, its pairwise-function registry, and insertion into any backbone."""

from .insert import insert_nonlocal, nonlocal_blocks
from .nonlocal_block import NonLocalBlock
from .pairwise import PairwiseFunction, get_pairwise, list_pairwise, register_pairwise

__all__ = [
    "NonLocalBlock",
    "PairwiseFunction",
    "get_pairwise",
    "insert_nonlocal",
    "list_pairwise",
    "nonlocal_blocks",
    "register_pairwise",
]
