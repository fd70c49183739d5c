"""Weight sources that the registry's tags point at; each yields a state dict in the model's key space."""

from __future__ import annotations

from dataclasses import dataclass

import safetensors.torch
import torch
from torch import nn

from ...models.inflate import inflate_state_dict
from .. import hub


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
