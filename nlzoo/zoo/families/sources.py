"""Weight sources that the registry's tags point at; each yields a state dict in the model's key space."""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import safetensors.torch
import torch
from torch import nn

from ...errors import HubUnavailableError, OriginUnavailableError
from ...models.inflate import inflate_state_dict
from ...models.timm_nl import check_timm_architecture
from .. import hub
from ..config import DataConfig
from ..registry import UnknownNameError

log = logging.getLogger("nlzoo")


@dataclass(frozen=True)
class TimmWeights:
    """A timm checkpoint from the Hugging Face Hub (``timm/<name>``), in the cache huggingface_hub manages.

    With ``inflate=True`` its 2D kernels are inflated to the 3D model's shapes (kernel repeated over t, / t).
    """

    timm_name: str
    inflate: bool = False

    def describe(self) -> str:
        how = " (2D ImageNet weights inflated to 3D)" if self.inflate else ""
        return f"hf-hub:timm/{self.timm_name}{how}"

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        from .. import hub

        path = hub.hub_file(
            f"timm/{self.timm_name}", "model.safetensors", cache_dir=cache_dir, local_files_only=local_files_only
        )
        state_dict = safetensors.torch.load_file(path)
        return inflate_state_dict(state_dict, model) if self.inflate else state_dict

    def pretrained_cfg(self) -> Any:
        """timm's ``PretrainedCfg`` of these weights (a name without a tag means timm's default tag).

        Raises:
            KeyError: timm has no such architecture, or no such tag for it (the message lists its tags).
        """
        return _timm_pretrained_cfg(self.timm_name)

    def data_config(self) -> DataConfig:
        """The input pipeline these weights were evaluated with, from timm's ``resolve_data_config``: what
        ``timm.data.resolve_model_data_config`` gives for a model built with these weights."""
        from timm.data import resolve_data_config

        return timm_data_config(resolve_data_config(pretrained_cfg=self.pretrained_cfg().to_dict()))

    def label_names(self) -> tuple[str, ...] | None:
        """Class names when timm knows them: ImageNet WordNet ids (``n01440764``, timm's ``ImageNetInfo``),
        which are also the class-folder names of an ImageNet tree; None for other label sets."""
        from timm.data import infer_imagenet_subset

        cfg = self.pretrained_cfg()
        if cfg.label_names:
            return tuple(cfg.label_names)
        subset = None if cfg.label_offset else infer_imagenet_subset(cfg.to_dict())
        return _imagenet_label_names(subset) if subset else None


def timm_data_config(resolved: dict[str, Any]) -> DataConfig:
    """A timm data config (``resolve_data_config`` / ``resolve_model_data_config``) as nlzoo's.

    Input size, mean/std, interpolation and crop_pct carry over. A crop mode other than timm's default centre
    crop has no nlzoo field; it is logged and the centre crop used.
    """
    if resolved.get("crop_mode", "center") != "center":
        log.warning("timm evaluates with crop_mode=%r; nlzoo uses a centre crop", resolved["crop_mode"])
    return DataConfig(
        crop_size=tuple(resolved["input_size"][1:]),
        mean=tuple(resolved["mean"]),
        std=tuple(resolved["std"]),
        interpolation=resolved["interpolation"],
        crop_pct=resolved["crop_pct"],
    )


@functools.cache
def _timm_pretrained_cfg(timm_name: str) -> Any:
    import timm

    arch, _, tag = timm_name.partition(".")
    check_timm_architecture(arch)
    tags = [name.partition(".")[2] for name in timm.list_pretrained(f"{arch}.*")]
    if not tags:
        raise UnknownNameError(f"timm publishes no pretrained weights for {arch!r}")
    if tag and tag not in tags:
        close = difflib.get_close_matches(tag, tags, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"timm has no weights {timm_name!r}.{hint} Tags of {arch}: {', '.join(tags)}.")
    return timm.models.get_pretrained_cfg(timm_name)


@functools.cache
def _imagenet_label_names(subset: str) -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo(subset).label_names())


# torchvision's video references decode at ``frame_rate`` fps and take consecutive frames; Kinetics clips are
# mostly 30 fps, so in source frames that is a stride of 30 / frame_rate.
_KINETICS_FPS = 30
_DOCS_FIELDS = ("frame_rate", "clips_per_video", "clip_len")


@dataclass(frozen=True)
class TorchvisionWeights:
    """A checkpoint of torchvision's weights API (``"R3D_18_Weights.KINETICS400_V1"``) for builder ``arch``.

    Nothing is downloaded until :meth:`fetch`; then torch.hub downloads into its cache (``$TORCH_HOME/hub/
    checkpoints``, or ``cache_dir``), checks the hash in the file name and loads with ``weights_only=True``.
    The checkpoint goes through torchvision's own strict ``load_state_dict`` into ``torchvision.models.<arch>``,
    and that model's ``state_dict()`` is returned: nlzoo's torchvision wrappers use the same keys, unprefixed.
    The data config, label names and reported accuracy are read from the weights' ``meta`` and transforms.
    """

    arch: str
    weights: str

    def entry(self) -> Any:
        """The torchvision ``WeightsEnum`` member (raises ValueError for an unknown name)."""
        import torchvision.models

        return torchvision.models.get_weight(self.weights)

    def describe(self) -> str:
        return f"torchvision:{self.weights} ({self.entry().url})"

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        import torchvision.models

        state_dict = self.download(cache_dir=cache_dir, local_files_only=local_files_only)
        reference = torchvision.models.get_model(self.arch, weights=None, num_classes=len(self.label_names()))
        reference.load_state_dict(state_dict)
        return reference.state_dict()

    def download(self, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        """The checkpoint's state dict as torchvision publishes it (cached, hash-checked, weights only)."""
        import huggingface_hub.constants

        weights = self.entry()
        model_dir = cache_dir if cache_dir is not None else os.path.join(torch.hub.get_dir(), "checkpoints")
        cached = os.path.join(model_dir, os.path.basename(urlparse(weights.url).path))
        offline = local_files_only or huggingface_hub.constants.HF_HUB_OFFLINE
        if offline and not os.path.isfile(cached):
            raise OriginUnavailableError(
                f"{self.weights} is not in the cache ({cached}) and downloads are off (local_files_only / "
                f"HF_HUB_OFFLINE). Download {weights.url} to that path, or load once with network access."
            )
        try:
            state_dict = weights.get_state_dict(
                model_dir=model_dir, map_location="cpu", progress=True, check_hash=True, weights_only=True
            )
        except OSError as err:
            raise HubUnavailableError(
                f"cannot download {weights.url} ({err}). Download it by hand to {cached}, or pass cache_dir= "
                "pointing at a folder that holds it."
            ) from err
        return state_dict

    def label_names(self) -> tuple[str, ...]:
        return tuple(self.entry().meta["categories"])

    def metrics(self) -> dict[str, float]:
        """``{"top1": ..., "top5": ...}`` as torchvision reports them (its ``_metrics``, one dataset)."""
        (reported,) = self.entry().meta["_metrics"].values()
        return {"top1": reported["acc@1"], "top5": reported["acc@5"]}

    def data_config(self) -> DataConfig:
        """The input pipeline these weights were evaluated with, from their transforms and ``_docs``.

        torchvision resizes every frame to a fixed (H, W) (e.g. 128x171) before a centre crop; nlzoo expresses
        the resize as a short side, ``min(resize_size)``, for train and test. Clip length, clips per video
        and frame rate come from the ``_docs`` sentence (``clip_len=16`` ...); one centre crop per clip.

        Raises:
            ValueError: the weights' docs lack one of ``frame_rate``, ``clips_per_video``, ``clip_len``.
        """
        weights = self.entry()
        transforms = weights.transforms()
        found = {k: int(v) for k, v in re.findall(r"`(\w+)=(\d+)`", weights.meta.get("_docs", ""))}
        missing = [k for k in _DOCS_FIELDS if k not in found]
        if missing:
            raise ValueError(f"{self.weights}: its meta['_docs'] no longer states {missing}; update TorchvisionWeights")
        short_side = min(transforms.resize_size)
        return DataConfig(
            crop_size=tuple(transforms.crop_size),
            mean=tuple(transforms.mean),
            std=tuple(transforms.std),
            interpolation=transforms.interpolation.value,
            num_frames=found["clip_len"],
            sampling_rate=max(1, round(_KINETICS_FPS / found["frame_rate"])),
            train_scale=(short_side, short_side),
            test_scale=short_side,
            test_clips=found["clips_per_video"],
            test_crops=1,
        )


@dataclass(frozen=True)
class HubWeights:
    """nlzoo's own published weights: one file of a Hub repo at a pinned commit, checked against its sha256.

    The commit pins what the Hub serves; the sha256 is checked on every load (download or cache hit), so a
    tampered mirror, a truncated download or a corrupted cache is refused rather than loaded.
    """

    repo_id: str
    revision: str
    sha256: str
    filename: str = "model.safetensors"

    def __post_init__(self) -> None:
        if not hub.COMMIT_RE.fullmatch(self.revision):
            raise ValueError(
                f"HubWeights({self.repo_id!r}) must pin a 40-hex commit sha, not {self.revision!r} "
                "(a branch can move; see the repo's commit history for the sha)"
            )
        if not hub.SHA256_RE.fullmatch(self.sha256):
            raise ValueError(f"HubWeights({self.repo_id!r}): sha256 must be 64 lowercase hex digits")

    def describe(self) -> str:
        return f"hf-hub:{self.repo_id}@{self.revision} ({self.filename}, sha256 {self.sha256})"

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        path = hub.hub_file(
            self.repo_id,
            self.filename,
            revision=self.revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            sha256=self.sha256,
        )
        return safetensors.torch.load_file(path)
