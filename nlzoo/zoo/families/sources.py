"""Weight sources that the registry's tags point at; each yields a state dict in the model's key space."""

from __future__ import annotations

from dataclasses import dataclass

import safetensors.torch
import torch
from torch import nn

from ...models.inflate import inflate_state_dict


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
