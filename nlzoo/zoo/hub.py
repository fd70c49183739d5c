"""Downloads from the Hugging Face Hub through huggingface_hub: its cache, revisions and offline mode.

Integrity: a caller that knows a file's sha256 (a registry tag, or the ``weights_sha256`` that
:func:`nlzoo.save_pretrained` records in ``config.json``) gets it checked after every download *and* every
cache hit. A mismatch (tampering, truncation, a corrupted cache) is refused with both digests, and the bad
copy is evicted from the cache so that it is never reused silently.

Failing fast: huggingface_hub retries a download it cannot start for about 25 s (backoff 1+2+4+8+8 s) before
it gives up. When the file is not cached, nlzoo first asks the Hub for the file's metadata once, with no
retries and a timeout of ``NLZOO_HUB_TIMEOUT`` seconds (default 10), and reports an unreachable Hub at once.

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` when it is first imported, so set
them before the first download.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from ..errors import ChecksumMismatchError, ConfigError, HubError, HubNotFoundError, HubUnavailableError
from .folder import CONFIG_NAME, WEIGHTS_NAME, file_sha256

log = logging.getLogger("nlzoo")

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
TIMEOUT_ENV = "NLZOO_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
OFFLINE_HINT = (
    "To work offline, load once with network access to fill the cache (HF_HOME or cache_dir=...) and then set "
    "HF_HUB_OFFLINE=1; behind a firewall, set HF_ENDPOINT to a mirror before starting Python; or download the "
    "folder elsewhere and load it by its path (nlzoo.load('path/to/folder'); on the command line --model "
    "path/to/folder)."
)


def split_revision(repo: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``."""
    repo_id, _, revision = repo.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"expected a Hub repo id 'org/name[@revision]'; got {repo!r}")
    return repo_id, revision or None


def hub_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    sha256: str | None = None,
) -> Path:
    """One file of a Hub repo, from the cache when possible, optionally checked against its sha256.

    Args:
        repo_id: ``"org/name"``.
        filename: path of the file in the repo.
        revision: branch, tag or (to pin it) a 40-hex commit; ``None`` is the default branch.
        cache_dir: huggingface_hub cache (default: ``$HF_HOME/hub``).
        local_files_only: never touch the network (``HF_HUB_OFFLINE=1`` does the same for every call).
        sha256: expected digest of the file; checked on every call, cached or not.

    Returns:
        The local path (inside the cache's ``snapshots/<commit>/``).

    Raises:
        HubNotFoundError: the repo, revision or file does not exist (or needs a token).
        HubUnavailableError: the Hub is unreachable or offline mode is on, and the file is not cached.
        ChecksumMismatchError: the file's sha256 differs from ``sha256``; the copy was evicted.
    """
    import huggingface_hub
    from huggingface_hub import errors

    at = f"{repo_id}@{revision}" if revision else repo_id
    timeout = hub_timeout()
    try:
        if not local_files_only:
            _fail_fast_if_unreachable(repo_id, filename, revision, cache_dir, timeout)
        path = Path(
            huggingface_hub.hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
                library_name="nlzoo",
                etag_timeout=timeout,
            )
        )
    except errors.RevisionNotFoundError as err:
        raise HubNotFoundError(f"{at}: revision {revision!r} does not exist on the Hub ({_first_line(err)})") from err
    except errors.RepositoryNotFoundError as err:  # also GatedRepoError
        raise HubNotFoundError(
            f"Hub repo {repo_id!r} was not found ({_first_line(err)}). Check the name; a private or gated repo "
            "needs a token (HF_TOKEN or `hf auth login`)."
        ) from err
    except errors.RemoteEntryNotFoundError as err:
        raise HubNotFoundError(f"{at} has no file {filename!r}: it is not an nlzoo model repo") from err
    except (_Unreachable, errors.LocalEntryNotFoundError, errors.HfHubHTTPError, OSError) as err:
        raise HubUnavailableError(
            f"cannot get {filename} of {at}: the Hugging Face Hub is unreachable or offline mode is on, and the "
            f"file is not in the cache ({_first_line(err)}). {OFFLINE_HINT}"
        ) from err
    if sha256 is not None:
        verify_sha256(path, sha256, what=f"{filename} of {at}")
    return path


def hub_timeout() -> float:
    """Seconds nlzoo waits for the Hub to answer before calling it unreachable: ``NLZOO_HUB_TIMEOUT`` or 10.

    Raises:
        ConfigError: the variable is not a positive number.
    """
    text = os.environ.get(TIMEOUT_ENV)
    if text is None or not text.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds > 0; got {text!r}")
    return value


class _Unreachable(Exception):
    """The metadata request failed for a network reason (raised inside :func:`hub_file` only)."""


def _fail_fast_if_unreachable(
    repo_id: str, filename: str, revision: str | None, cache_dir: str | os.PathLike[str] | None, timeout: float
) -> None:
    """One metadata request without retries when ``filename`` is not cached; raise :class:`_Unreachable` on a
    network failure. A cached file needs no check: huggingface_hub falls back to it without retrying."""
    import huggingface_hub
    from huggingface_hub import constants, errors
    from huggingface_hub.utils import _http

    if constants.HF_HUB_OFFLINE:
        return
    cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    if isinstance(cached, str):
        return
    network_errors = getattr(_http, "_DEFAULT_RETRY_ON_EXCEPTIONS", ())  # what huggingface_hub would retry
    url = huggingface_hub.hf_hub_url(repo_id, filename, revision=revision)
    try:
        huggingface_hub.get_hf_file_metadata(url, timeout=timeout, library_name="nlzoo")
    except errors.HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (408, 429) or (status is not None and status >= 500):
            raise _Unreachable(f"the Hub answered HTTP {status}") from err
        # 401/404/...: hf_hub_download raises the precise error (repo, revision or file not found)
    except (OSError, *network_errors) as err:
        raise _Unreachable(f"no answer within {timeout:g} s ({TIMEOUT_ENV}): {_first_line(err)}") from err


def verify_sha256(path: Path, expected: str, *, what: str) -> None:
    """Refuse ``path`` unless its sha256 is ``expected``; a bad file is removed from the cache first."""
    if not SHA256_RE.fullmatch(expected):
        raise ValueError(f"expected sha256 of {what} must be 64 lowercase hex digits; got {expected!r}")
    found = file_sha256(path)
    if found == expected:
        return
    evicted = _evict(path)
    raise ChecksumMismatchError(
        f"{what} failed its integrity check (tampered, truncated or corrupted): expected sha256 {expected}, "
        f"found {found}. "
        + (
            "The bad copy was removed from the cache; retry to download it again, and if the mismatch persists "
            "the file on the server is not the one that was published."
            if evicted
            else f"Could not remove it from the cache: delete {path} (and the file it links to) by hand."
        )
    )


def _evict(path: Path) -> bool:
    """Delete a cached file: the snapshot entry and, when it is a symlink, the blob it points to."""
    try:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        if blob != path:
            blob.unlink(missing_ok=True)
    except OSError as err:
        log.warning("could not evict %s from the Hub cache: %s", path, err)
        return False
    return True


def download_folder(
    repo: str, *, cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool = False
) -> Path:
    """Fetch a model folder (config.json + model.safetensors) from ``org/name[@revision]``; its local path.

    The weights are taken from the very commit the config came from (never a mixed pair when the branch
    moves in between), and checked against the ``weights_sha256`` recorded in that config.json when present
    (folders written by nlzoo record it). This catches truncated, corrupted or swapped weights; trusting the
    repo's owner is still the caller's choice, so registry tags pin a commit and a sha256 of their own.

    Returns:
        The snapshot folder (its name is the resolved commit sha).
    """
    repo_id, revision = split_revision(repo)
    config = hub_file(repo_id, CONFIG_NAME, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    commit = config.parent.name if COMMIT_RE.fullmatch(config.parent.name) else revision
    try:
        expected = json.loads(config.read_text()).get("weights_sha256")
    except (ValueError, AttributeError) as err:
        raise ConfigError(f"{CONFIG_NAME} of {repo} is not valid JSON ({err}); it is not an nlzoo model repo") from err
    weights = hub_file(
        repo_id, WEIGHTS_NAME, revision=commit, cache_dir=cache_dir, local_files_only=local_files_only, sha256=expected
    )
    if weights.parent != config.parent:
        raise HubError(
            f"{repo}: config and weights resolved to different snapshots ({config.parent}, {weights.parent})"
        )
    return config.parent


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
