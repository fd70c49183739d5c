"""Weight sources that the registry's tags point at; each yields a state dict in the model's key space."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import safetensors.torch
import torch
from torch import nn

from ...models.inflate import inflate_state_dict
from ..config import DataConfig


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
        import huggingface_hub.constants
        import torchvision.models

        weights = self.entry()
        model_dir = cache_dir if cache_dir is not None else os.path.join(torch.hub.get_dir(), "checkpoints")
        cached = os.path.join(model_dir, os.path.basename(urlparse(weights.url).path))
        offline = local_files_only or huggingface_hub.constants.HF_HUB_OFFLINE
        if offline and not os.path.isfile(cached):
            raise FileNotFoundError(
                f"{self.weights} is not in the cache ({cached}) and downloads are off (local_files_only / "
                f"HF_HUB_OFFLINE). Download {weights.url} to that path, or load once with network access."
            )
        try:
            state_dict = weights.get_state_dict(
                model_dir=model_dir, map_location="cpu", progress=True, check_hash=True, weights_only=True
            )
        except OSError as err:
            raise OSError(
                f"cannot download {weights.url} ({err}). Download it by hand to {cached}, or pass cache_dir= "
                "pointing at a folder that holds it."
            ) from err
        reference = torchvision.models.get_model(self.arch, weights=None, num_classes=len(self.label_names()))
        reference.load_state_dict(state_dict)
        return reference.state_dict()

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
