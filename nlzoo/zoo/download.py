"""Downloading a published checkpoint from its origin (not the Hub): huggingface_hub's HTTP download with a
progress bar, bounded timeouts, a resumable ``.incomplete`` file renamed into place only once verified.

Integrity: torch.hub and mmaction2 file names end in ``-<first hex digits of the file's sha256>.<ext>``
(``..._20220812-e213c223.pth``); that prefix is checked, and so is a full sha256 when the caller knows one.
A file that fails is deleted, never kept or converted. Before the transfer, one request without retries
(``NLZOO_HUB_TIMEOUT`` seconds, default 10) tells an unreachable origin at once instead of after ~25 s of retries.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ChecksumMismatchError, OriginUnavailableError
from .hub import hub_timeout

log = logging.getLogger("nlzoo")

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def sha256_prefix_in_name(url_or_name: str) -> str | None:
    """The sha256 prefix a torch.hub / mmaction2 file name carries (``x_20220812-e213c223.pth`` -> ``e213c223``)."""
    match = _HASH_IN_NAME.search(os.path.basename(urlparse(url_or_name).path))
    return match[1] if match else None


def check_sha256(digest: str, *, url: str, expected: str | None, what: str) -> None:
    """Refuse ``digest`` unless it matches ``expected`` (when known) and the prefix in ``url``'s file name.

    Raises:
        ChecksumMismatchError: naming both digests.
    """
    prefix = sha256_prefix_in_name(url)
    if prefix is not None and not digest.startswith(prefix):
        raise ChecksumMismatchError(
            f"{what} has sha256 {digest}, but its published name says it starts with {prefix}: the file is not "
            "the one that was published (tampered, truncated or replaced)"
        )
    if expected is not None and digest != expected:
        raise ChecksumMismatchError(
            f"{what} has sha256 {digest}, but {expected} was published: the file is not the one that was "
            "published (tampered, truncated or replaced)"
        )


def download_file(url: str, destination: Path, *, expected_sha256: str | None = None) -> str:
    """Download ``url`` to ``destination`` (atomically, verified) and return its sha256.

    Raises:
        OriginUnavailableError: the origin does not answer, refuses, or has no such file.
        ChecksumMismatchError: the bytes fail the checks of :func:`check_sha256`; nothing is kept.
    """
    from huggingface_hub.file_download import http_get

    size = _probe(url)
    partial = destination.with_name(destination.name + ".incomplete")
    resume = partial.stat().st_size if partial.is_file() else 0
    if size is not None and resume > size:
        partial.unlink()
        resume = 0
    log.info("downloading %s", url)
    try:
        with partial.open("ab") as out:
            http_get(url, out, resume_size=resume, expected_size=size, displayed_filename=destination.name)
    except (OSError, *network_errors()) as err:
        raise OriginUnavailableError(f"downloading {url} failed ({_first_line(err)}); retry to resume it") from err
    digest = _sha256(partial)
    try:
        check_sha256(digest, url=url, expected=expected_sha256, what=f"the download of {url}")
    except ChecksumMismatchError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    return digest


def _probe(url: str) -> int | None:
    """One HEAD request without retries; the file's size when the origin states it."""
    from huggingface_hub.utils import get_session

    timeout = hub_timeout()
    try:
        response = get_session().head(url, follow_redirects=True, timeout=timeout)
    except (OSError, *network_errors()) as err:
        raise OriginUnavailableError(
            f"{url} does not answer (within {timeout:g} s, NLZOO_HUB_TIMEOUT): {_first_line(err)}"
        ) from err
    if response.status_code >= 400:
        raise OriginUnavailableError(f"{url} answered HTTP {response.status_code}; the file is not available there")
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def network_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub's HTTP client raises for network trouble (the exceptions it would retry)."""
    from huggingface_hub.utils import _http

    return tuple(getattr(_http, "_DEFAULT_RETRY_ON_EXCEPTIONS", ()))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
