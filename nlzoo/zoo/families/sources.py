"""Weight sources that the registry's tags point at; each yields a state dict in the model's key space."""

from __future__ import annotations

from dataclasses import dataclass

import safetensors.torch
import torch
from torch import nn

from ...models.inflate import inflate_state_dict


@dataclass(frozen=True)
class TimmInflated:
    """ImageNet weights of a timm 2D ResNet from the Hugging Face Hub (``timm/<name>``), inflated to 3D."""

    timm_name: str

    def describe(self) -> str:
        return f"hf-hub:timm/{self.timm_name} (2D ImageNet weights inflated to 3D)"

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        from ..hub import hub_file

        path = hub_file(
            f"timm/{self.timm_name}", "model.safetensors", cache_dir=cache_dir, local_files_only=local_files_only
        )
        return inflate_state_dict(safetensors.torch.load_file(path), model)
