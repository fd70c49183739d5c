"""Pairwise functions f(x_i, x_j) of the non-local operation, one registered class each."""

from .base import PairwiseFunction, get_pairwise, list_pairwise, register_pairwise
from .concatenation import Concatenation
from .dot_product import DotProduct
from .softmax import EmbeddedGaussian, Gaussian

__all__ = [
    "Concatenation",
    "DotProduct",
    "EmbeddedGaussian",
    "Gaussian",
    "PairwiseFunction",
    "get_pairwise",
    "list_pairwise",
    "register_pairwise",
]
