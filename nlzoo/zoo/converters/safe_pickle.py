"""A restricted unpickler for the authors' Caffe2 ``.pkl`` weights: plain containers and numpy arrays only.

Unpickling runs whatever callables a file names, so an arbitrary pickle can do anything its reader can.
The Caffe2 weight files (video-nonlocal-net ``checkpoints.py``: ``pickle.dump(dict(blobs=...))`` from
Python 2) only need numpy's array, dtype and scalar reconstructors; every other global (``os.system``,
``builtins.eval``, torch internals, ...) is refused *before* it can be called.
"""

from __future__ import annotations

import codecs
import collections
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy >= 2 keeps the reconstructors in numpy._core; numpy.core is a deprecated alias there
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]

# (module, name) -> object. Python 2 pickles name ``numpy.core.multiarray``; numpy 2 writes ``numpy._core``.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(mod, "_reconstruct"): _multiarray._reconstruct for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "scalar"): _multiarray.scalar for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2
}


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside :data:`ALLOWED_GLOBALS`; nothing it names was called."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` and no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"refused to load the global {module}.{name}: a weights pickle holds only dicts, lists and "
                "numpy arrays, so this file is something else (or was tampered with); nothing from it was run"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobalError("refused a persistent id: a plain weights pickle has none (is it a torch file?)")


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; Python 2 strings decode as latin-1 (numpy's rule).

    Raises:
        RefusedGlobalError: the file names a disallowed global.
        pickle.UnpicklingError: the file is not a pickle.
    """
    with Path(path).open("rb") as f:
        return RestrictedUnpickler(f, encoding="latin1").load()
