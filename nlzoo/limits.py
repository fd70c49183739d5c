"""Upper bounds on every size a user controls, checked before anything is allocated.

One request (a CLI call, a page upload) must not be able to take the machine down: ``explain
--panel-height 100000`` once asked for tens of GB. Each limit has a default that covers real use with room to
spare (the paper's 10 x 3 views, 32-frame clips, 24-megapixel photos) and can be raised with an environment
variable ``NLZOO_MAX_<NAME>`` (e.g. ``NLZOO_MAX_PANEL_HEIGHT=4096``).
"""

from __future__ import annotations

import os

from .errors import ConfigError, LimitError

# name -> (default, what it bounds)
LIMITS: dict[str, tuple[int, str]] = {
    "image_pixels": (64_000_000, "pixels of an input image (width x height; decompression bombs stop here)"),
    "video_frames": (500_000, "frames of an input video (about 4.6 hours at 30 fps)"),
    "decoded_frames": (4_096, "frames decoded for one prediction (clips x frames per clip)"),
    "views": (300, "test views of one video (clips x crops)"),
    "persons": (256, "person boxes in one image"),
    "queries": (64, "query positions drawn by explain"),
    "top_k": (1_000, "arrows per query drawn by explain"),
    "panel_height": (2_048, "pixel height of one drawn frame"),
    "figure_pixels": (100_000_000, "pixels of one drawn figure or animation frame"),
}


def limit(name: str) -> int:
    """The current limit ``name``: ``NLZOO_MAX_<NAME>`` if set, else the default."""
    default, _ = LIMITS[name]
    variable = f"NLZOO_MAX_{name.upper()}"
    text = os.environ.get(variable)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"{variable}={text!r} must be a positive integer (default {default})")
    return int(text)


def check_limit(name: str, value: int, *, what: str | None = None) -> None:
    """Raise :class:`~nlzoo.errors.LimitError` if ``value`` exceeds the limit ``name``.

    Args:
        name: a key of :data:`LIMITS`.
        value: the requested size.
        what: how to name the value in the message (default: the limit's description).
    """
    bound = limit(name)
    if value > bound:
        raise LimitError(
            f"{what or LIMITS[name][1]} is {value:,}, over the limit of {bound:,}; ask for less, or set "
            f"NLZOO_MAX_{name.upper()} to raise the limit"
        )


def check_resize(width: int, height: int, factor: float) -> None:
    """Refuse to scale a ``width`` x ``height`` picture by ``factor`` past the ``image_pixels`` limit: a resize
    that keeps the aspect ratio turns a narrow strip (a few KB) into gigabytes."""
    new_width, new_height = round(width * factor), round(height * factor)
    check_limit(
        "image_pixels",
        new_width * new_height,
        what=f"a {width}x{height} picture resized to {new_width}x{new_height} (crop a strip this narrow first)",
    )
