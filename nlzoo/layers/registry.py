"""The one mechanism behind the block's part registries (pairwise functions, keys, fusions, presets).

Each registry is a plain ``dict`` owned by its module; these helpers add to it and look names up in it, so every
registry rejects duplicates the same way and answers an unknown name with close matches and the known names.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import UnknownNameError


def add(registry: dict[str, Any], kind: str, name: str, entry: Any) -> None:
    """Register ``entry`` under ``name``; a second registration of the same name is an error (never a silent swap)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} needs a non-empty string name; got {name!r}")
    if name in registry:
        raise ValueError(f"a {kind} named {name!r} is already registered ({registry[name]!r})")
    registry[name] = entry


def lookup(registry: dict[str, Any], kind: str, name: str) -> Any:
    """The entry for ``name``; an unknown name raises UnknownNameError listing close matches and every known name."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(registry), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(registry))}.") from None
