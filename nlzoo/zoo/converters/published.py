"""Published checkpoints as weight sources: downloaded from their origin and converted on first load.

``nlzoo.load("i3d_r50_nl.kinetics400")`` on a tag whose weights nlzoo does not host fetches the file its
publisher serves (the authors' Caffe2 pickle, PySlowFast's, mmaction2's or pytorchvideo's), runs the same
strict conversion as ``nlzoo convert`` and keeps the result as a model folder (safetensors) in the cache;
later loads read only that folder. Nothing from the downloaded file is executed (see
:mod:`nlzoo.zoo.converters.reading`), and the download itself is deleted after conversion.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import safetensors.torch
import torch
from torch import nn

from ...errors import OriginUnavailableError

log = logging.getLogger(__name__)


def converted_cache_root(cache_dir: str | None) -> Path:
    """Where converted checkpoints live: ``cache_dir`` or ``$TORCH_HOME/hub/nlzoo-converted``."""
    return Path(cache_dir) if cache_dir is not None else Path(torch.hub.get_dir()) / "nlzoo-converted"


@dataclass(frozen=True)
class PublishedCheckpoint:
    """The checkpoint of registry tag ``name`` (``"arch.tag"``) at ``url``, in converter format ``fmt``."""

    name: str
    url: str
    fmt: str
    license: str | None = None

    def describe(self) -> str:
        return f"{self.url} ({self.fmt}), converted by nlzoo on first load"

    def manual_steps(self) -> str:
        return (
            f"The published checkpoint is {self.url} (license: {self.license or 'see its origin'}). Download it, "
            f"then run `nlzoo convert --source {self.fmt} --model {self.name} CHECKPOINT OUT_DIR` and load OUT_DIR "
            "with nlzoo.load('OUT_DIR')"
        )

    def folder(self, cache_dir: str | None) -> Path:
        """The converted model folder in the cache."""
        return converted_cache_root(cache_dir) / self.name

    def fetch(self, model: nn.Module, *, cache_dir: str | None, local_files_only: bool) -> dict[str, torch.Tensor]:
        import huggingface_hub.constants

        folder = self.folder(cache_dir)
        weights = folder / "model.safetensors"
        if not weights.is_file():
            if local_files_only or huggingface_hub.constants.HF_HUB_OFFLINE:
                raise OriginUnavailableError(
                    f"{self.name}: nlzoo does not host these weights yet; it converts the published checkpoint on "
                    f"first load, but it is not in the cache ({folder}) and downloads are off (local_files_only / "
                    f"HF_HUB_OFFLINE). Load it once with network access, or convert it yourself. "
                    f"{self.manual_steps()}."
                )
            self._download_and_convert(folder)
        return safetensors.torch.load_file(weights)

    def _download_and_convert(self, folder: Path) -> None:
        from .api import convert_checkpoint

        folder.parent.mkdir(parents=True, exist_ok=True)
        work = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            download = work / os.path.basename(urlparse(self.url).path)
            try:
                _download(self.url, download)
            except OSError as err:  # URLError, HTTPError, timeouts, disk errors
                raise OriginUnavailableError(
                    f"{self.name}: nlzoo does not host these weights yet, and the published checkpoint cannot be "
                    f"downloaded now ({err}). {self.manual_steps()}."
                ) from err
            convert_checkpoint(self.fmt, self.name, download, work / "model")
            try:
                os.replace(work / "model", folder)
            except OSError:
                if not (folder / "model.safetensors").is_file():
                    raise
                # another process converted it meanwhile: keep theirs
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _download(url: str, path: Path, *, timeout: float = 60.0, chunk: int = 1 << 20) -> None:
    """Stream ``url`` to ``path``; ``timeout`` bounds every connect and read, so a silent network fails."""
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response, path.open("wb") as out:
        expected = response.headers.get("Content-Length")
        while block := response.read(chunk):
            out.write(block)
    if expected is not None and path.stat().st_size != int(expected):
        raise OSError(f"truncated download: {path.stat().st_size} of {expected} bytes")
