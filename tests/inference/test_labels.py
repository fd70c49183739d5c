"""``readable_labels``: ImageNet WordNet ids are shown as words; other names as they are."""

from __future__ import annotations

from timm.data import ImageNetInfo

from nlzoo.inference.labels import readable_labels


def test_imagenet_ids_become_their_lemmas() -> None:
    ids = ImageNetInfo().label_names()
    shown = readable_labels(ids, len(ids))
    assert shown[0] == "tench, Tinca tinca" and shown[999] == "toilet tissue, toilet paper, bathroom tissue"
    assert len(shown) == 1000 and all(not name.startswith("n0") for name in shown)


def test_an_unknown_id_stays_and_other_names_are_untouched() -> None:
    assert readable_labels(["n01440764", "n99999999"], 2) == ["tench, Tinca tinca", "n99999999"]
    assert readable_labels(["n01440764", "cat"], 2) == ["n01440764", "cat"]  # not a WordNet label set
    assert readable_labels(("archery", "bowling"), 2) == ["archery", "bowling"]


def test_a_model_without_names_gets_indices() -> None:
    assert readable_labels(None, 3) == ["class_0", "class_1", "class_2"]
    assert readable_labels([], 2) == ["class_0", "class_1"]
