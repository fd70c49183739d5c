"""Where videos and labels come from: ``path label`` list files and class-per-folder trees.

List files follow PySlowFast / mmaction2 / pytorchvideo (Kinetics): one ``<path> <label>`` per line,
whitespace-separated, the path relative to a root (absolute paths are kept). The label is the last
field, so paths may contain spaces; a multi-label line gives comma-separated class indices
(``clips/a.mp4 3,17``). Blank lines and lines starting with ``#`` are ignored. Class folders are
``root/<class name>/<video>``, classes numbered in sorted order (torchvision / pytorchvideo).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputNotFoundError

VIDEO_EXTENSIONS = (
    *(".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg"),
    *(".ts", ".m2ts", ".mts", ".3gp", ".flv", ".wmv", ".ogv"),  # broadcast, camcorder, phone and web formats
)


@dataclass(frozen=True)
class VideoItem:
    """One video and its class indices (one for single-label data)."""

    path: str
    labels: tuple[int, ...]

    @property
    def label(self) -> int:
        if len(self.labels) != 1:
            raise ConfigError(f"{self.path} has labels {self.labels}; use multi_label=True for multi-label data")
        return self.labels[0]


def read_label_names(path: str | os.PathLike[str]) -> list[str]:
    """Class names, one per line in class-index order (blank lines and ``#`` comments skipped).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file names no class, or a name twice.
    """
    names = [line.strip() for line in Path(path).read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ConfigError(f"{path}: no class names found (expected one name per line)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: class names listed twice: {dupes}")
    return names


def read_list_file(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    num_classes: int | None = None,
) -> list[VideoItem]:
    """Parse a ``<path> <label>`` list file.

    Args:
        path: the list file.
        root: directory the video paths are relative to (default: the list file's directory).
        num_classes: when given, every label must be in ``0..num_classes-1``.

    Returns:
        The items in file order.

    Raises:
        FileNotFoundError: no such list file.
        ValueError: a malformed line or an out-of-range label, naming the file and line number.
    """
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    items = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = line.rsplit(None, 1)
        if len(fields) != 2:
            raise ConfigError(f"{where}: expected '<video path> <label>', got {raw!r}")
        video, label_text = fields
        labels = _parse_labels(label_text, where)
        bad = [c for c in labels if num_classes is not None and c >= num_classes]
        if bad:
            raise ConfigError(
                f"{where}: label {bad[0]} is out of range for {num_classes} classes (0..{num_classes - 1})"
            )
        items.append(VideoItem(str(base / video), labels))
    if not items:
        raise ConfigError(f"{path}: no videos listed (expected lines '<video path> <label>')")
    return items


def _parse_labels(text: str, where: str) -> tuple[int, ...]:
    try:
        labels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"{where}: label {text!r} is not a class index (integers, comma-separated for multi-label)"
        ) from None
    if any(c < 0 for c in labels):
        raise ConfigError(f"{where}: negative label {text!r}")
    return labels


def scan_class_folders(
    root: str | os.PathLike[str],
    *,
    label_names: Sequence[str] | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> tuple[list[VideoItem], list[str]]:
    """Videos in ``root/<class>/`` folders.

    Args:
        root: the tree's top directory.
        label_names: the class order to use (e.g. the training split's); every folder must be one of them.
            Default: the folder names, sorted.
        extensions: file endings counted as videos (case-insensitive).

    Returns:
        ``(items, label_names)``.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: no class folders or videos, or a folder that is not a known class.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputNotFoundError(f"{root}: not a directory of class folders")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ConfigError(f"{root}: no class folders found (expected {root}/<class name>/<video>)")
    names = list(label_names) if label_names is not None else folders
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise ConfigError(f"{root}: folders {unknown} are not among the {len(names)} known classes")
    suffixes = tuple(e.lower() for e in extensions)
    items = [
        VideoItem(str(file), (names.index(folder),))
        for folder in folders
        for file in sorted((root / folder).rglob("*"))
        if file.is_file() and file.suffix.lower() in suffixes
    ]
    if not items:
        raise ConfigError(f"{root}: no videos with extensions {list(suffixes)} in its class folders")
    return items, names


def infer_num_classes(items: Sequence[VideoItem]) -> int:
    """One more than the largest label (for list files without class names)."""
    return 1 + max(c for item in items for c in item.labels)
