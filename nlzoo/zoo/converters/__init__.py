"""Converters from the authors' and peers' checkpoints (PySlowFast, Caffe2, mmaction2, pytorchvideo, mmdetection)."""

from .api import SOURCES, convert_checkpoint, detect_format, get_format
from .base import ConversionError, SourceFormat
from .reading import UnsafeCheckpointError, read_checkpoint

__all__ = [
    "SOURCES",
    "ConversionError",
    "SourceFormat",
    "UnsafeCheckpointError",
    "convert_checkpoint",
    "detect_format",
    "get_format",
    "read_checkpoint",
]
