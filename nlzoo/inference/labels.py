"""Class names as people read them.

timm's ImageNet weights name their classes by WordNet id (``n01440764``), which is also how an ImageNet
folder tree names its class folders, so the zoo keeps those ids as ``label_names``. What the inference
commands and the web page show is the id's lemmas (``tench, Tinca tinca``), from timm's ``ImageNetInfo``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from timm.data import ImageNetInfo

_WORDNET_ID = re.compile(r"n\d{8}")


def readable_labels(names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``num_classes`` names to show: WordNet ids become their lemmas (an id timm does not know stays as it is),
    other names stay, and a model without names gets ``class_<index>``."""
    if not names:
        return [f"class_{i}" for i in range(num_classes)]
    if not all(_WORDNET_ID.fullmatch(name) for name in names):
        return list(names)
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [_lemmas(info, name) for name in names]


def _lemmas(info: ImageNetInfo, wordnet_id: str) -> str:
    try:
        return info.label_name_to_description(wordnet_id)
    except KeyError:  # an id outside timm's WordNet tables
        return wordnet_id
