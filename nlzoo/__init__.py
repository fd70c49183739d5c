"""nlzoo: Non-local Neural Networks (Wang, Girshick, Gupta, He, CVPR 2018) as a model zoo."""

__version__ = "0.1.0"

from .layers import NonLocalBlock, insert_nonlocal, list_pairwise, register_pairwise
from .zoo import convert_checkpoint, create_model, list_models, load, model_info, push_to_hub, save_pretrained

__all__ = [
    "NonLocalBlock",
    "__version__",
    "convert_checkpoint",
    "create_model",
    "insert_nonlocal",
    "list_models",
    "list_pairwise",
    "load",
    "model_info",
    "push_to_hub",
    "register_pairwise",
    "save_pretrained",
]
