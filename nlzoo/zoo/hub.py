"""Downloads from the Hugging Face Hub through huggingface_hub (its cache, revisions and offline mode)."""

from __future__ import annotations

import os
from pathlib import Path

from .folder import CONFIG_NAME, WEIGHTS_NAME


class HubUnavailableError(OSError):
    """The Hub could not be reached (or offline mode is on) and the file is not in the cache."""


def split_revision(repo: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``."""
    repo_id, _, revision = repo.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"expected a Hub repo id 'org/name[@revision]'; got {repo!r}")
    return repo_id, revision or None


def hub_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> Path:
    """One file of a Hub repo, from the cache when possible; network failures become one clear error."""
    import huggingface_hub
    from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return Path(
            huggingface_hub.hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
                library_name="nlzoo",
            )
        )
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as err:
        at = f"@{revision}" if revision else ""
        raise FileNotFoundError(f"{filename} not found in Hub repo {repo_id}{at}: {err}") from err
    except (OSError, huggingface_hub.errors.LocalEntryNotFoundError) as err:
        raise HubUnavailableError(
            f"cannot get {filename} of {repo_id}: the Hugging Face Hub is unreachable or offline mode is on, "
            f"and the file is not in the cache ({err}). Connect once to fill the cache (HF_HOME), point "
            "HF_ENDPOINT at a mirror, or load a local folder with nlzoo.load('path/to/folder')."
        ) from err


def download_folder(
    repo: str, *, cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool = False
) -> Path:
    """Fetch a model folder (config.json + model.safetensors) from ``org/name[@revision]``; its local path."""
    repo_id, revision = split_revision(repo)
    kwargs = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
    config = hub_file(repo_id, CONFIG_NAME, **kwargs)
    weights = hub_file(repo_id, WEIGHTS_NAME, **kwargs)
    if config.parent != weights.parent:
        raise OSError(
            f"{repo_id}: config and weights resolved to different snapshots ({config.parent}, {weights.parent})"
        )
    return config.parent
