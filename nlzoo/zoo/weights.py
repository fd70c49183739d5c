"""Strict state-dict loading: adapt the classifier when num_classes changes, refuse every other mismatch.

Users of model zoos keep getting silently wrong models (a partial load that "succeeds", a Charades head
in a Kinetics model); here anything but a deliberate head change is an error that lists the keys.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import CheckpointMismatchError

log = logging.getLogger("nlzoo")

_SHOW = 12


@dataclass
class LoadReport:
    """What :func:`load_weights` did besides copying tensors."""

    dropped: list[str] = field(default_factory=list)  # source classifier keys not loaded (new head)
    kept_init: list[str] = field(default_factory=list)  # model keys the source legitimately lacks


def load_weights(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    classifier: str | Sequence[str] | None = None,
    reset_head: bool = False,
    partial: tuple[str, ...] = (),
    source: str = "checkpoint",
) -> LoadReport:
    """Copy ``state_dict`` into ``model`` with every key accounted for.

    Args:
        model: the target module.
        state_dict: tensors in the model's key space.
        classifier: dotted name of the head (``"fc"``), or several (a detector's box and mask predictors);
            with ``reset_head`` their keys are skipped and the model's freshly initialised head is kept (a
            num_classes change), and this is logged.
        partial: fnmatch patterns of model keys the source may lack (e.g. ``"*_nonlocal.*"`` for blocks
            added to a plain pretrained backbone); those keep their initialisation.
        source: a name for messages.

    Raises:
        CheckpointMismatchError: listing missing, unexpected and mis-shaped keys.
    """
    own = model.state_dict()
    report = LoadReport()
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    head = tuple(f"{name}." for name in names) or None
    usable: dict[str, torch.Tensor] = {}
    unexpected, mis_shaped = [], []
    for key, value in state_dict.items():
        if reset_head and head and key.startswith(head):
            report.dropped.append(key)
        elif key not in own:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            mis_shaped.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
        else:
            usable[key] = value
    missing = []
    for key in own:
        if key in usable or (reset_head and head and key.startswith(head)):
            continue
        if any(fnmatch.fnmatchcase(key, p) for p in partial):
            report.kept_init.append(key)
        elif key not in state_dict:
            missing.append(key)
    if missing or unexpected or mis_shaped:
        raise CheckpointMismatchError(_describe(source, type(model).__name__, missing, unexpected, mis_shaped))
    model.load_state_dict(usable, strict=False)
    if report.dropped:
        log.warning(
            "%s: re-initialised the classifier for the new num_classes; dropped %s", source, ", ".join(report.dropped)
        )
    if report.kept_init:
        log.info(
            "%s: %d model keys are not in the source and keep their initialisation (%s)",
            source,
            len(report.kept_init),
            ", ".join(partial),
        )
    return report


def _describe(source: str, model: str, missing: list[str], unexpected: list[str], mis_shaped: list[str]) -> str:
    parts = [f"{source} does not match {model}:"]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mis_shaped)):
        if keys:
            more = f" ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""
            parts.append(f"  {len(keys)} {label}: {', '.join(keys[:_SHOW])}{more}")
    parts.append(
        "Check that the checkpoint belongs to this architecture (and its model_args); to fine-tune with a "
        "different number of classes pass num_classes=..."
    )
    return "\n".join(parts)
