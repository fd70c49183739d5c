"""nlzoo: Non-local Neural Networks (Wang, Girshick, Gupta, He, CVPR 2018) as a model zoo."""

__version__ = "0.1.0"

from .layers import NonLocalBlock, insert_nonlocal, list_pairwise, register_pairwise
from .zoo import convert_checkpoint, list_models, load, model_info, save_pretrained

__all__ = [
    "NonLocalBlock",
    "__version__",
    "convert_checkpoint",
    "insert_nonlocal",
    "list_models",
    "list_pairwise",
    "load",
    "model_info",
    "register_pairwise",
    "save_pretrained",
]
