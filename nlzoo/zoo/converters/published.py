"""Published checkpoints as weight sources: downloaded from their origin and converted on first load.

``nlzoo.load("i3d_r50_nl.kinetics400")`` on a tag whose weights nlzoo does not host fetches the file its
publisher serves (the authors' Caffe2 pickle, PySlowFast's, mmaction2's or pytorchvideo's), runs the same
strict conversion as ``nlzoo convert`` and keeps the result as a model folder (safetensors) in the cache;
later loads read only that folder. Nothing from the downloaded file is executed (see
:mod:`nlzoo.zoo.converters.reading`), and the download itself is deleted after conversion.

Integrity (see :mod:`nlzoo.zoo.download`): the download must match the sha256 prefix its file name carries
(mmaction2, torch.hub) and the tag's ``origin_sha256`` when known; the converted folder records the source's
sha256, and a cached conversion whose recorded source digest does not match is refused.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ...errors import ChecksumMismatchError, OriginUnavailableError
from ..download import check_sha256, download_file
from ..folder import CONFIG_NAME, read_folder

log = logging.getLogger(__name__)


def converted_cache_root(cache_dir: str | None) -> Path:
    """Where converted checkpoints live: ``cache_dir`` or ``$TORCH_HOME/hub/nlzoo-converted``."""
    return Path(cache_dir) if cache_dir is not None else Path(torch.hub.get_dir()) / "nlzoo-converted"


@dataclass(frozen=True)
class PublishedCheckpoint:
    """The checkpoint of registry tag ``name`` (``"arch.tag"``) at ``url``, in converter format ``fmt``;
    ``sha256``: its digest when known (checked on download and against every cached conversion)."""

    name: str
    url: str
    fmt: str
    license: str | None = None
    sha256: str | None = None

    def describe(self) -> str:
        return f"{self.url} ({self.fmt}), converted by nlzoo on first load"

    def manual_steps(self) -> str:
        return (
            f"The published checkpoint is {self.url} (license: {self.license or 'see its origin'}). Download it, "
            f"then run `nlzoo convert --model {self.name} CHECKPOINT OUT_DIR` and load it with "
            "nlzoo.load('./OUT_DIR')"
        )

    def folder(self, cache_dir: str | None) -> Path:
        """The converted model folder in the cache."""
        return converted_cache_root(cache_dir) / self.name

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        import huggingface_hub.constants

        folder = self.folder(cache_dir)
        if not (folder / CONFIG_NAME).is_file():
            if local_files_only or huggingface_hub.constants.HF_HUB_OFFLINE:
                raise OriginUnavailableError(
                    f"{self.name}: nlzoo does not host these weights yet; it converts the published checkpoint on "
                    f"first load, but it is not in the cache ({folder}) and downloads are off (local_files_only / "
                    f"HF_HUB_OFFLINE). Load it once with network access, or convert it yourself. "
                    f"{self.manual_steps()}."
                )
            self._download_and_convert(folder)
        cfg, tensors = read_folder(folder)  # validated config, weights checked against their recorded sha256
        recorded = (cfg.provenance.get("conversion") or {}).get("input_sha256")
        try:
            if not isinstance(recorded, str):
                raise ChecksumMismatchError("it records no sha256 of the file it was converted from")
            check_sha256(recorded, url=self.url, expected=self.sha256, what="the file it was converted from")
        except ChecksumMismatchError as err:
            raise ChecksumMismatchError(
                f"{self.name}: the cached conversion {folder} is refused: {err}. Delete that folder to download and "
                "convert the published checkpoint again."
            ) from None
        return tensors

    def _download_and_convert(self, folder: Path) -> None:
        from .api import convert_checkpoint

        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".download", dir=folder.parent))
        try:
            download = work / os.path.basename(urlparse(self.url).path)
            try:
                download_file(self.url, download, expected_sha256=self.sha256)
            except OriginUnavailableError as err:
                raise OriginUnavailableError(
                    f"{self.name}: nlzoo does not host these weights yet, and the published checkpoint cannot be "
                    f"downloaded now ({err}). {self.manual_steps()}."
                ) from err
            convert_checkpoint(self.fmt, self.name, download, folder)  # an atomic folder write
        finally:
            shutil.rmtree(work, ignore_errors=True)
