from __future__ import annotations

from pathlib import Path

import pytest

from nlzoo.data import read_label_names, read_list_file, scan_class_folders
from nlzoo.data.video_sources import infer_num_classes


def test_list_file_paths_relative_to_its_folder(tmp_path: Path) -> None:
    listing = tmp_path / "train.txt"
    listing.write_text("# Kinetics-style list\nabseiling/a b.mp4 0\n\n/abs/c.mp4   3\nd.mp4 1,4\n")
    items = read_list_file(listing)
    assert [(it.path, it.labels) for it in items] == [
        (str(tmp_path / "abseiling/a b.mp4"), (0,)),
        ("/abs/c.mp4", (3,)),
        (str(tmp_path / "d.mp4"), (1, 4)),
    ]
    assert infer_num_classes(items) == 5
    assert read_list_file(listing, root="/data/k400")[0].path == "/data/k400/abseiling/a b.mp4"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("only_a_path.mp4", r"train\.txt:2: expected '<video path> <label>'"),
        ("a.mp4 dancing", r"train\.txt:2: label 'dancing' is not a class index"),
        ("a.mp4 -1", r"train\.txt:2: negative label"),
        ("a.mp4 7", r"train\.txt:2: label 7 is out of range for 5 classes \(0\.\.4\)"),
        ("a.mp4 1,9", r"train\.txt:2: label 9 is out of range"),
    ],
)
def test_list_file_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    listing = tmp_path / "train.txt"
    listing.write_text(f"ok.mp4 0\n{line}\n")
    with pytest.raises(ValueError, match=message):
        read_list_file(listing, num_classes=5)


def test_empty_list_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "val.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no videos listed"):
        read_list_file(tmp_path / "val.txt")


def test_label_names(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("abseiling\n# comment\nair drumming\n")
    assert read_label_names(tmp_path / "names.txt") == ["abseiling", "air drumming"]
    (tmp_path / "dupes.txt").write_text("a\nb\na\n")
    with pytest.raises(ValueError, match=r"listed twice: \['a'\]"):
        read_label_names(tmp_path / "dupes.txt")


def test_class_folders_sorted_and_filtered(tmp_path: Path) -> None:
    for rel in ("walk/1.mp4", "walk/sub/2.AVI", "run/3.mkv", "run/notes.txt", "jump/4.webm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    items, names = scan_class_folders(tmp_path)
    assert names == ["jump", "run", "walk"]
    assert [(Path(it.path).name, it.label) for it in items] == [("4.webm", 0), ("3.mkv", 1), ("1.mp4", 2), ("2.AVI", 2)]
    # A validation tree uses the training split's class order; unknown folders are an error.
    items, _ = scan_class_folders(tmp_path, label_names=["walk", "run", "jump", "swim"])
    assert {Path(it.path).name: it.label for it in items}["4.webm"] == 2
    with pytest.raises(ValueError, match=r"folders \['walk'\] are not among"):
        scan_class_folders(tmp_path, label_names=["jump", "run"])


def test_class_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_class_folders(tmp_path / "nope")
    with pytest.raises(ValueError, match="no class folders"):
        scan_class_folders(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="no videos"):
        scan_class_folders(tmp_path)
