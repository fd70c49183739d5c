"""Features from any stage: timm's ``forward_intermediates`` / ``prune_intermediate_layers`` / ``feature_info``
contract for the video networks, and the ``features_only`` wrapper every family shares.

A network that mixes in :class:`StagedFeatures` describes itself as a list of :class:`FeatureStage` (the modules
each stage runs, in order, and the size of what comes out); the mixin derives ``forward_features``,
``forward_intermediates``, ``prune_intermediate_layers`` and ``feature_info`` from that one list, so the
intermediates and the classifier path cannot drift apart. Non-local blocks are steps of the stage they sit in
(``layer2`` runs ``layer2.1_nonlocal``; S3D's third stage ends at ``features.6_nonlocal``).

timm's models (the image family, the pose backbones) already implement the contract; :class:`FeaturesOnly`
wraps either kind.

Video feature maps are ``NCTHW`` (the default) or ``NTHWC``; ``reduction`` in ``feature_info`` is the spatial
stride and ``temporal_reduction`` the temporal one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .conv_backend import conv_bn_relu

Indices = int | Sequence[int] | None
VIDEO_FORMATS = ("NCTHW", "NTHWC")


@dataclass(frozen=True)
class FeatureStage:
    """One tap of a staged network.

    Attributes:
        steps: dotted names of the modules the stage runs, in order, on the previous stage's output.
        num_chs: output channels.
        reduction: spatial stride of the output relative to the input.
        temporal_reduction: temporal stride of the output (video networks).
    """

    steps: tuple[str, ...]
    num_chs: int
    reduction: int
    temporal_reduction: int = 1

    @property
    def module(self) -> str:
        """The module whose output is this stage's feature map (timm's ``feature_info[i]["module"]``)."""
        return self.steps[-1]

    def info(self) -> dict[str, Any]:
        return {
            "num_chs": self.num_chs,
            "reduction": self.reduction,
            "temporal_reduction": self.temporal_reduction,
            "module": self.module,
        }


def take_indices(num_stages: int, indices: Indices) -> tuple[list[int], int]:
    """timm's rule for ``indices``: ``None`` all stages, an int ``n`` the last ``n``, a sequence those stages
    (negative counts from the end). Returns the absolute indices and the largest.

    Raises:
        ConfigError: an index out of range (the message gives the valid range).
    """
    if indices is None:
        indices = num_stages
    if isinstance(indices, int):
        if not 0 < indices <= num_stages:
            raise ConfigError(f"indices={indices} asks for the last {indices} stages; the network has {num_stages}")
        taken = list(range(num_stages - indices, num_stages))
    else:
        taken = []
        for i in indices:
            if not isinstance(i, int) or not -num_stages <= i < num_stages:
                raise ConfigError(
                    f"stage index {i!r} is out of range: the network has {num_stages} stages "
                    f"(0..{num_stages - 1}, or -{num_stages}..-1 from the end)"
                )
            taken.append(i % num_stages)
        if not taken:
            raise ConfigError("indices is empty; name at least one stage (e.g. indices=[-1] for the last)")
    return taken, max(taken)


def to_output_fmt(x: torch.Tensor, output_fmt: str) -> torch.Tensor:
    """A (B, C, T, H, W) map in ``output_fmt`` (``NCTHW`` unchanged, ``NTHWC`` permuted)."""
    return x.permute(0, 2, 3, 4, 1) if output_fmt == "NTHWC" else x


class StagedFeatures:
    """Mixin: timm's feature contract for an ``nn.Module`` that lists its stages in :meth:`feature_stages`.

    The host keeps ``check_input``, ``reset_classifier`` and ``forward_head``; ``forward_features`` runs every
    (unpruned) stage.
    """

    _stages_kept: list[FeatureStage] | None = None  # set by prune_intermediate_layers

    def feature_stages(self) -> list[FeatureStage]:
        raise NotImplementedError

    def _stages(self) -> list[FeatureStage]:
        return self.feature_stages() if self._stages_kept is None else self._stages_kept

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """One dict per stage: ``num_chs``, ``reduction`` (spatial), ``temporal_reduction`` and ``module``."""
        return [stage.info() for stage in self._stages()]

    def _run(self, x: torch.Tensor, stage: FeatureStage) -> torch.Tensor:
        modules = [self.get_submodule(step) for step in stage.steps]  # type: ignore[attr-defined]
        while modules:
            if len(modules) > 2 and isinstance(modules[0], nn.Conv3d | nn.Conv2d) and isinstance(modules[2], nn.ReLU):
                x = conv_bn_relu(*modules[:3], x)  # a stem: the ReLU runs inside the convolution once prepared
                modules = modules[3:]
            else:
                x = modules.pop(0)(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip -> the last stage's feature map."""
        self.check_input(x)  # type: ignore[attr-defined]
        for stage in self._stages():
            x = self._run(x, stage)
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Indices = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCTHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of chosen stages (timm's ``forward_intermediates``, for clips).

        Args:
            x: (B, C, T, H, W) clips.
            indices: ``None`` all stages, ``n`` the last n, or a list of stage indices (negative from the end).
            norm: accepted for timm compatibility; these networks have no final norm, so it changes nothing.
            stop_early: stop after the last requested stage (the returned final features are then that map).
            output_fmt: ``"NCTHW"`` or ``"NTHWC"`` for the intermediates.
            intermediates_only: return only the list of maps.

        Returns:
            The list of maps, or ``(final_features, maps)`` where ``final_features`` is what
            ``forward_features`` returns (``NCTHW``, ready for ``forward_head``).

        Raises:
            ConfigError: an index out of range or an unknown ``output_fmt``.
        """
        if output_fmt not in VIDEO_FORMATS:
            raise ConfigError(f"output_fmt must be one of {', '.join(VIDEO_FORMATS)}; got {output_fmt!r}")
        stages = self._stages()
        taken, last = take_indices(len(stages), indices)
        self.check_input(x)  # type: ignore[attr-defined]
        intermediates = []
        for i, stage in enumerate(stages[: last + 1] if (stop_early or intermediates_only) else stages):
            x = self._run(x, stage)
            if i in taken:
                intermediates.append(to_output_fmt(x, output_fmt))
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self, indices: Indices = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last of ``indices`` (and the head with ``prune_head``, or when the final
        stage goes); returns the absolute indices kept, as timm does."""
        stages = self._stages()
        taken, last = take_indices(len(stages), indices)
        for stage in stages[last + 1 :]:
            for step in stage.steps:
                self.set_submodule(step, nn.Identity())  # type: ignore[attr-defined]
        self._stages_kept = stages[: last + 1]
        if last < len(stages) - 1:
            self.num_features = stages[last].num_chs
        if prune_head or last < len(stages) - 1:
            self.reset_classifier(0)  # type: ignore[attr-defined]
        return taken


class FeatureInfo:
    """The stages a :class:`FeaturesOnly` module outputs: ``channels()``, ``reduction()``, ``module_name()``
    as timm's ``FeatureInfo``, plus ``temporal_reduction()`` for video networks (1 for images)."""

    def __init__(self, info: Sequence[dict[str, Any]], out_indices: Sequence[int]) -> None:
        self.info = [dict(info[i]) for i in out_indices]
        self.out_indices = tuple(out_indices)

    def get(self, key: str) -> list[Any]:
        return [entry.get(key) for entry in self.info]

    def channels(self) -> list[int]:
        return self.get("num_chs")

    def reduction(self) -> list[int]:
        return self.get("reduction")

    def temporal_reduction(self) -> list[int]:
        return [entry.get("temporal_reduction", 1) for entry in self.info]

    def module_name(self) -> list[str]:
        return self.get("module")

    def __len__(self) -> int:
        return len(self.info)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.info[index]

    def __repr__(self) -> str:
        return f"FeatureInfo({self.info})"


class FeaturesOnly(nn.Module):
    """A network cut after its last wanted stage that returns the feature maps of ``out_indices``.

    What ``nlzoo.load(name, features_only=True, out_indices=(...))`` returns (timm's ``features_only``): the
    model is pruned (later stages and the head are dropped), ``forward`` returns a list of maps, and
    ``feature_info`` describes them.

    Args:
        model: a network with timm's ``forward_intermediates`` / ``prune_intermediate_layers`` / ``feature_info``.
        out_indices: stages to output (negative from the end); default all.
        output_fmt: layout of the maps (video: ``NCTHW`` / ``NTHWC``; images: timm's ``NCHW``); default the
            model's.

    Raises:
        ConfigError: the model has no staged features, or an index is out of range.
    """

    def __init__(self, model: nn.Module, out_indices: Indices = None, *, output_fmt: str | None = None) -> None:
        super().__init__()
        missing = [
            a for a in ("forward_intermediates", "prune_intermediate_layers", "feature_info") if not hasattr(model, a)
        ]
        if missing:
            raise ConfigError(
                f"{type(model).__name__} has no {', '.join(missing)}, so it cannot give features_only stages"
            )
        num_stages = len(model.feature_info)
        taken, _ = take_indices(num_stages, tuple(out_indices) if isinstance(out_indices, list) else out_indices)
        info = list(model.feature_info)
        self.out_indices = tuple(model.prune_intermediate_layers(taken, prune_head=True))
        self.feature_info = FeatureInfo(info, self.out_indices)
        self.model = model
        self.output_fmt = output_fmt
        if hasattr(model, "nlzoo_config"):
            self.nlzoo_config = model.nlzoo_config

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        kwargs = {} if self.output_fmt is None else {"output_fmt": self.output_fmt}
        return self.model.forward_intermediates(x, indices=list(self.out_indices), intermediates_only=True, **kwargs)


def stage_index(feature_info: Sequence[dict[str, Any]], name: str) -> int:
    """The index of the stage whose ``module`` is ``name``.

    Raises:
        UnknownNameError: no such stage (the message lists close matches and all names).
    """
    from ..errors import UnknownNameError

    names = [entry["module"] for entry in feature_info]
    if name in names:
        return names.index(name)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownNameError(f"no stage named {name!r}.{hint} Stages: {', '.join(names)}.")


def features_only_model(model: nn.Module, *, features_only: bool, out_indices: Indices) -> FeaturesOnly:
    """``nlzoo.load(..., features_only=True, out_indices=...)``: ``model`` as a :class:`FeaturesOnly`.

    Raises:
        ConfigError: ``out_indices`` without ``features_only=True``, or an index out of range.
    """
    if not features_only:
        raise ConfigError(f"out_indices={out_indices!r} selects feature stages; pass features_only=True with it")
    return FeaturesOnly(model, out_indices)
