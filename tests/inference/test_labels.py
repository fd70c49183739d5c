"""``readable_labels``: ImageNet WordNet ids are shown as words; other names as they are."""

from __future__ import annotations

import pytest
from timm.data import ImageNetInfo

from nlzoo.inference.labels import readable_labels


def test_imagenet_ids_become_their_lemmas() -> None:
    ids = ImageNetInfo().label_names()
    shown = readable_labels(ids, len(ids))
    assert shown[0] == "tench, Tinca tinca" and shown[999] == "toilet tissue, toilet paper, bathroom tissue"
    assert len(set(shown)) == 1000  # every class its own name: the two "crane"s keep their ids
    assert shown[134] == "crane (n02012849)" and shown[517] == "crane (n03126707)"
    assert sum(name.endswith(")") and "(n0" in name for name in shown) == 2


def test_an_unknown_id_stays_and_other_names_are_untouched() -> None:
    assert readable_labels(["n01440764", "n99999999"], 2) == ["tench, Tinca tinca", "n99999999"]
    assert readable_labels(["n01440764", "cat"], 2) == ["n01440764", "cat"]  # not a WordNet label set
    assert readable_labels(("archery", "bowling"), 2) == ["archery", "bowling"]


def test_a_model_without_names_gets_indices() -> None:
    assert readable_labels(None, 3) == ["class_0", "class_1", "class_2"]
    assert readable_labels([], 2) == ["class_0", "class_1"]


def test_top_classes_rank_the_best_with_their_readable_names() -> None:
    import torch

    from nlzoo.inference.labels import top_classes

    scores = torch.tensor([0.1, 0.6, 0.3])
    assert top_classes(scores, ["a", "b", "c"], 2) == [
        {"rank": 1, "class": 1, "label": "b", "score": pytest.approx(0.6)},
        {"rank": 2, "class": 2, "label": "c", "score": pytest.approx(0.3)},
    ]
    assert [row["label"] for row in top_classes(scores, None, 10)] == ["class_1", "class_2", "class_0"]
