"""The shared part of the converters: a source format as data (key rules, defaults) and strict key mapping.

Each format file declares one :class:`SourceFormat`: regex rules from its key names to nlzoo's, the
entries that are not weights, the target keys it lacks by construction (exactly zero), and the
architecture settings its framework always uses. :func:`fit_to_model` then accounts for every key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...errors import ConversionError
from .guess import guess_architecture
from .reading import Container, is_array

Rule = tuple[str, Callable[[re.Match[str]], str]]

#: A BatchNorm entry's name in PyTorch checkpoints (a regex group for the rules).
BN_ENTRY = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
#: Bottleneck branch letters (Caffe2 / PySlowFast / pytorchvideo ``a, b, c``) to torchvision's ``conv1..3``.
BRANCH_CONV = {"a": "1", "b": "2", "c": "3"}


def stage_layer(stage: str) -> str:
    """The paper's stage numbers (Caffe2 ``res2..res5``, PySlowFast ``s2..s5``) -> nlzoo's ``layer1..layer4``."""
    return f"layer{int(stage) - 1}"


_SHOW = 12


@dataclass(frozen=True)
class SourceFormat:
    """How one framework names and stores the weights of one architecture family (the paper's ResNet-3D; Mask R-CNN).

    Args:
        name: the ``--source`` name.
        description: what files this is, for messages.
        container: ``"torch"`` (``torch.save``) or ``"pickle"`` (a plain pickle of numpy arrays).
        weights_key: where the weights dict sits in the file (``"model_state"``), ``""`` for the top level.
        signature: regex of a key only this format has; detects the format of an unknown file.
        rules: ``(regex, target)`` pairs; the first full match names the nlzoo key.
        ignore: regexes of entries that are not model weights (optimizer momenta, counters).
        zero_fill: fnmatch patterns of nlzoo keys the format lacks by construction and that are exactly
            zero there (mmcv's bias-free ``conv_out``; BN ``num_batches_tracked`` Caffe2 never counted).
        model_args: architecture settings every net of this framework has (e.g. mmaction2's stem).
        nonlocal_args: non-local block settings every block of this framework has.
        default_instantiation: the pairwise function when the keys do not tell; ``None`` means the
            checkpoint is ambiguous and the user (or a registry tag) must say.
        softmax_scale_required: the framework's embedded Gaussian may or may not scale (mmcv ``use_scale``).
        nonlocal_choices: for a checkpoint that does not say how its blocks compute: each setting the framework
            offers (in its own words) -> the ``nonlocal_args`` that reproduce it; printed as ready advice.
        data_config: data-config fields fixed by the framework (e.g. its mean/std).
        derive: optional function of the mapped weights returning the keys a variant of the format stores
            implicitly and a sentence saying why (Caffe2's frozen-BN nets keep only ``_bn_s`` / ``_bn_b``);
            ``({}, "")`` when there are none.
        read_settings: optional reader of settings recorded in the file itself (PySlowFast's ``cfg``,
            mmengine's ``meta``): returns the non-local arguments and, for the record, ``{field: value}`` of
            the fields that decided them.
        adapt: optional rewrite of the mapped weights given the whole file, returning them and a sentence
            saying what changed (mmdetection's class rows, background last, moved to torchvision's COCO ids).
        classifier: the nlzoo key whose first dimension is the number of classes.
    """

    name: str
    description: str
    container: Container
    weights_key: str
    signature: str
    rules: tuple[Rule, ...]
    ignore: tuple[str, ...] = ()
    zero_fill: tuple[str, ...] = ()
    model_args: Mapping[str, Any] = field(default_factory=dict)
    nonlocal_args: Mapping[str, Any] = field(default_factory=dict)
    default_instantiation: str | None = "embedded_gaussian"
    softmax_scale_required: bool = False
    data_config: Mapping[str, Any] = field(default_factory=dict)
    nonlocal_choices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    read_settings: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]] | None = None
    derive: Callable[[Mapping[str, Any]], tuple[dict[str, Any], str]] | None = None
    adapt: Callable[[Mapping[str, Any], Any], tuple[dict[str, Any], str]] | None = None
    classifier: str = "fc.weight"

    def target_key(self, key: str) -> str | None:
        """The nlzoo key for a source key, or ``None`` when no rule matches."""
        for pattern, target in self.rules:
            match = re.fullmatch(pattern, key)
            if match:
                return target(match)
        return None

    def is_ignored(self, key: str) -> bool:
        return any(re.fullmatch(p, key) for p in self.ignore)

    def map_keys(self, weights: Mapping[str, Any]) -> dict[str, Any]:
        """Rename every weight; any entry no rule explains is an error listing them.

        Raises:
            ConversionError: unconsumed source keys, or two source keys for one target.
        """
        mapped: dict[str, Any] = {}
        sources: dict[str, str] = {}
        unconsumed: list[str] = []
        for key, value in weights.items():
            if self.is_ignored(key):
                continue
            target = self.target_key(key) if is_array(value) else None
            if target is None:
                unconsumed.append(key)
            elif target in mapped:
                raise ConversionError(f"{key!r} and {sources[target]!r} both map to {target!r}")
            else:
                mapped[target], sources[target] = value, key
        if unconsumed:
            raise ConversionError(
                f"{len(unconsumed)} {self.name} entries are not weights nlzoo knows how to place: "
                f"{_listing(unconsumed)}\nThe checkpoint holds layers this architecture family does not have "
                "(or is not an architecture this format's converter knows); nothing was written."
            )
        return mapped


def fit_to_model(
    fmt: SourceFormat, mapped: Mapping[str, Any], target: Mapping[str, torch.Tensor], *, model_name: str
) -> dict[str, torch.Tensor]:
    """Tensors for every key of ``target``: converted from ``mapped`` or, for ``fmt.zero_fill`` keys, zeros.

    Singleton dimensions may differ (Caffe2's test-time ``pred_w`` is a 1x1x1 conv); nothing else may.

    Raises:
        ConversionError: listing missing, unexpected and mis-shaped keys, with the architecture the
            checkpoint looks like.
    """
    out: dict[str, torch.Tensor] = {}
    unexpected = [k for k in mapped if k not in target]
    missing, mis_shaped = [], []
    for key, like in target.items():
        if key in mapped:
            tensor = _as_tensor(key, mapped[key])
            if tuple(tensor.shape) != tuple(like.shape):
                if _squeezed(tensor.shape) != _squeezed(like.shape):
                    mis_shaped.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(like.shape)}")
                    continue
                tensor = tensor.reshape(like.shape)
            out[key] = tensor.to(like.dtype)
        elif any(fnmatch.fnmatchcase(key, p) for p in fmt.zero_fill):
            out[key] = torch.zeros_like(like)
        else:
            missing.append(key)
    if missing or unexpected or mis_shaped:
        lines = [f"the {fmt.name} checkpoint does not fit {model_name} (keys shown in nlzoo's names):"]
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mis_shaped)):
            if keys:
                lines.append(f"  {len(keys)} {label}: {_listing(keys)}")
        guess = guess_architecture({k: tuple(np.shape(v)) for k, v in mapped.items()})
        if guess:
            lines.append(f"The checkpoint looks like {guess}; pass that as --model (or check its model_args).")
        raise ConversionError("\n".join(lines))
    return out


def _as_tensor(key: str, value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise ConversionError(f"{key}: the checkpoint holds {value.dtype} values, not numbers")
        return torch.from_numpy(np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("=")))
    if not (value.is_floating_point() or value.dtype in _INT_DTYPES):
        raise ConversionError(f"{key}: the checkpoint holds {value.dtype} values, not real numbers")
    return value.detach().cpu()


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _squeezed(shape: Any) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def _listing(keys: list[str]) -> str:
    more = f" ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more
