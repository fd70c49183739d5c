"""Class names as people read them, and the best classes of a prediction.

timm's ImageNet weights name their classes by WordNet id (``n01440764``), which is also how an ImageNet
folder tree names its class folders, so the zoo keeps those ids as ``label_names``. What the inference
commands and the web page show is the id's lemmas (``tench, Tinca tinca``), from timm's ``ImageNetInfo``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from timm.data import ImageNetInfo

_WORDNET_ID = re.compile(r"n\d{8}")


def readable_labels(names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``num_classes`` names to show: WordNet ids become their lemmas (an id timm does not know stays as it is;
    lemmas two classes share get their ids), other names stay, and a model without names gets ``class_<index>``."""
    if not names:
        return [f"class_{i}" for i in range(num_classes)]
    if not all(_WORDNET_ID.fullmatch(name) for name in names):
        return list(names)
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    words = [_lemmas(info, name) for name in names]
    counts = Counter(words)  # ImageNet-1k has two classes called "crane": the bird and the machine
    return [word if counts[word] == 1 else f"{word} ({name})" for word, name in zip(words, names, strict=True)]


def top_classes(scores: torch.Tensor, label_names: Sequence[str] | None, k: int) -> list[dict[str, Any]]:
    """The ``k`` best of (num_classes,) ``scores``, best first: ``{"rank", "class", "label", "score"}`` each,
    labels as :func:`readable_labels` shows them."""
    top = scores.topk(min(k, scores.numel()))
    names = readable_labels(label_names, scores.numel())
    return [
        {"rank": rank, "class": index, "label": names[index], "score": score}
        for rank, (score, index) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True), start=1)
    ]


def _lemmas(info: ImageNetInfo, wordnet_id: str) -> str:
    try:
        return info.label_name_to_description(wordnet_id)
    except KeyError:  # an id outside timm's WordNet tables
        return wordnet_id
