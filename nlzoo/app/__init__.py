"""The web page behind ``nlzoo serve`` and the Hugging Face Space (``spaces/app.py``); needs ``nlzoo[app]``.

``build_demo(models)`` returns the Gradio app: a video tab (top-5 labels over multi-view testing, the
attention GIF of a chosen non-local block, the time taken, the model's card facts) and an image tab (labels,
or the drawn skeleton for pose models), over the same helpers as the command line (:mod:`nlzoo.inference`).
"""

from .limits import Limits
from .page import build_demo, launch_options

__all__ = ["Limits", "build_demo", "launch_options"]
