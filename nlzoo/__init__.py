"""nlzoo: Non-local Neural Networks (Wang, Girshick, Gupta, He, CVPR 2018) as a model zoo."""

from .layers import NonLocalBlock, insert_nonlocal, list_pairwise, register_pairwise

__version__ = "0.1.0"

__all__ = ["NonLocalBlock", "__version__", "insert_nonlocal", "list_pairwise", "register_pairwise"]
