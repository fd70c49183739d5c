"""Keys parts of the non-local family: which positions each query sees."""

from .base import Keys, get_keys, list_keys, register_keys
from .criss_cross import CrissCrossKeys
from .dense import AllKeys, SubsampledKeys
from .pyramid import PyramidKeys

__all__ = [
    "AllKeys",
    "CrissCrossKeys",
    "Keys",
    "PyramidKeys",
    "SubsampledKeys",
    "get_keys",
    "list_keys",
    "register_keys",
]
