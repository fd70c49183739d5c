"""Pairwise functions f(x_i, x_j) of the non-local operation, one registered class each."""

from .base import PairwiseFunction, get_pairwise, list_pairwise, register_pairwise
from .concatenation import Concatenation
from .context import QueryIndependentContext
from .disentangled import Disentangled
from .dot_product import DotProduct
from .efficient import EfficientAttention
from .softmax import EmbeddedGaussian, Gaussian

__all__ = [
    "Concatenation",
    "Disentangled",
    "DotProduct",
    "EfficientAttention",
    "EmbeddedGaussian",
    "Gaussian",
    "PairwiseFunction",
    "QueryIndependentContext",
    "get_pairwise",
    "list_pairwise",
    "register_pairwise",
]
