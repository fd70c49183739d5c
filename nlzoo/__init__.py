"""nlzoo: Non-local Neural Networks (Wang, Girshick, Gupta, He, CVPR 2018) as a model zoo."""

__version__ = "0.1.0"

from .export import export_onnx, export_program
from .layers import NonLocalBlock, insert_nonlocal, list_pairwise, register_pairwise
from .zoo import convert_checkpoint, list_models, load, model_info, push_to_hub, save_pretrained

__all__ = [
    "NonLocalBlock",
    "__version__",
    "convert_checkpoint",
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
