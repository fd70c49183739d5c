"""Fusion parts of the non-local family: how the response returns into the input."""

from .base import Fusion, get_fusion, list_fusions, register_fusion
from .global_context import GlobalContextFusion
from .residual import ResidualFusion
from .scaled import ScaledFusion

__all__ = [
    "Fusion",
    "GlobalContextFusion",
    "ResidualFusion",
    "ScaledFusion",
    "get_fusion",
    "list_fusions",
    "register_fusion",
]
