"""Hugging Face Space entry point: the page of ``nlzoo serve``, unchanged.

The models come from the Space's ``NLZOO_MODELS`` variable (comma-separated names, folders or
``hf-hub:org/repo``; default :data:`nlzoo.app.page.DEFAULT_MODELS`). Spaces run this file with ``python app.py``.
"""

from nlzoo.app import Limits, build_demo, launch_options

limits = Limits()
demo = build_demo(limits=limits)

if __name__ == "__main__":
    demo.launch(**launch_options(limits))
