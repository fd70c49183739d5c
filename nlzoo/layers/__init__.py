"""Layers: the non-local block family (keys x pairwise function x fusion registries), presets, and insertion
into any backbone."""

from .fusion import Fusion, get_fusion, list_fusions, register_fusion
from .insert import insert_nonlocal, nonlocal_blocks
from .keys import Keys, get_keys, list_keys, register_keys
from .nonlocal_block import NonLocalBlock
from .pairwise import PairwiseFunction, get_pairwise, list_pairwise, register_pairwise
from .presets import build_block, list_presets, preset_args, register_preset

__all__ = [
    "Fusion",
    "Keys",
    "NonLocalBlock",
    "PairwiseFunction",
    "build_block",
    "get_fusion",
    "get_keys",
    "get_pairwise",
    "insert_nonlocal",
    "list_fusions",
    "list_keys",
    "list_pairwise",
    "list_presets",
    "nonlocal_blocks",
    "preset_args",
    "register_fusion",
    "register_keys",
    "register_pairwise",
    "register_preset",
]
