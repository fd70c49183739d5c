"""What the synthetic "same colour?" datasets share: classes, palette, split sizes and atomic generation.

A generated dataset records its spec in ``meta.json``; :func:`ensure_dataset` reuses a folder only when it
holds exactly that spec, so a changed spec is never silently trained on stale files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..errors import ConfigError, OutputExistsError

LABEL_NAMES = ("different_colour", "same_colour")
SPLITS = ("train", "val", "test")
PALETTE = (
    (230, 40, 40),  # red
    (40, 200, 60),  # green
    (50, 80, 240),  # blue
    (230, 220, 40),  # yellow
    (220, 50, 220),  # magenta
    (40, 220, 220),  # cyan
    (240, 140, 20),  # orange
    (140, 60, 230),  # violet
)


class SplitSpec:
    """Base of the synthetic specs (frozen dataclasses with ``num_train`` / ``num_val`` / ``num_test``)."""

    format_version: ClassVar[int] = 1
    num_train: int
    num_val: int
    num_test: int

    def count(self, split: str) -> int:
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]

    def to_dict(self) -> dict[str, Any]:
        """The spec as recorded in ``meta.json``."""
        fields = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {**fields, "size": list(fields["size"]), "format_version": self.format_version}


Spec = TypeVar("Spec", bound=SplitSpec)


def write_dataset(
    root: str | os.PathLike[str],
    spec: SplitSpec,
    fill: Callable[[Path], None],
    *,
    label_names: Sequence[str] = LABEL_NAMES,
) -> Path:
    """Create ``root`` atomically: ``fill`` writes the samples into a temporary folder, then ``labels.txt``
    (``label_names``, one a line) and ``meta.json`` are added and the folder is renamed to ``root``.

    Raises:
        FileExistsError: ``root`` already exists.
    """
    root = Path(root)
    if root.exists():
        raise OutputExistsError(f"{root} already exists; remove it or choose another root")
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    (tmp / "labels.txt").write_text("".join(f"{name}\n" for name in label_names))
    (tmp / "meta.json").write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    os.replace(tmp, root)
    return root


def ensure_dataset(root: str | os.PathLike[str], spec: Spec, write: Callable[[Path, Spec], Path]) -> Path:
    """``write(root, spec)`` unless ``root`` already holds exactly this spec.

    Raises:
        ValueError: ``root`` holds something else (another spec, or no ``meta.json``).
    """
    root = Path(root)
    if not root.exists():
        return write(root, spec)
    meta = root / "meta.json"
    found = json.loads(meta.read_text()) if meta.is_file() else None
    if found != spec.to_dict():
        raise ConfigError(
            f"{root} exists but was not generated with this spec (meta.json {'differs' if found else 'missing'}); "
            "remove it or choose another root"
        )
    return root
