"""nlzoo: Non-local Neural Networks (Wang, Girshick, Gupta, He, CVPR 2018) as a model zoo.

The public names resolve on first use (PEP 562, as ``huggingface_hub`` does): ``import nlzoo`` and
``nlzoo --help`` stay fast and do not import torch, timm, torchvision, Lightning or huggingface_hub.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the submodule that defines it.
_LAZY: dict[str, str] = {
    "NonLocalBlock": "layers",
    "insert_nonlocal": "layers",
    "list_pairwise": "layers",
    "register_pairwise": "layers",
    "convert_checkpoint": "zoo",
    "create_model": "zoo",
    "export_onnx": "export",
    "export_program": "export",
    "list_models": "zoo",
    "load": "zoo",
    "model_info": "zoo",
    "push_to_hub": "zoo",
    "save_pretrained": "zoo",
}

if TYPE_CHECKING:
    from .export import export_onnx, export_program
    from .layers import NonLocalBlock, insert_nonlocal, list_pairwise, register_pairwise
    from .zoo import convert_checkpoint, create_model, list_models, load, model_info, push_to_hub, save_pretrained


# Subpackages reachable as attributes after a bare ``import nlzoo`` (as when they were imported eagerly).
_SUBMODULES = frozenset(
    {"cli", "data", "errors", "explain", "export", "layers", "limits", "models", "precision", "tasks", "zoo"}
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module 'nlzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__all__ = [
    "NonLocalBlock",
    "__version__",
    "convert_checkpoint",
    "create_model",
    "export_onnx",
    "export_program",
    "insert_nonlocal",
    "list_models",
    "list_pairwise",
    "load",
    "model_info",
    "push_to_hub",
    "register_pairwise",
    "save_pretrained",
]
