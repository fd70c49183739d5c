"""``published.json``: nlzoo's own releases of converted checkpoints, one record per registry tag.

``nlzoo release`` writes a record after each push: the Hub repo, the commit it made, the sha256 of the
uploaded ``model.safetensors`` and the published file it was converted from (URL and sha256). The registry
reads the file when it registers tags, and a tag with a record loads from that commit (:class:`HubWeights`,
checked against the sha256) instead of downloading and converting the publisher's file; checkpoints.md then
shows it as "published". The file is validated strictly: a record that names a branch instead of a commit, a
malformed digest, an unknown key or another source file than the tag's would send users to the wrong
weights, so it is an error at import rather than a silent fallback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import atomic_write_text
from .config import PretrainedTag
from .hub import COMMIT_RE, SHA256_RE

RECORD_PATH = Path(__file__).with_name("published.json")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ReleaseRecord:
    """One released tag: ``repo_id`` at commit ``revision`` holds ``filename`` with ``sha256``, converted from
    ``source_url`` whose bytes had ``source_sha256``."""

    repo_id: str
    revision: str
    sha256: str
    source_url: str
    source_sha256: str
    filename: str = "model.safetensors"

    def hub_weights(self) -> Any:
        """The tag's weight source: this file of this commit, checked against ``sha256`` on every load."""
        from .families.sources import HubWeights

        return HubWeights(self.repo_id, self.revision, self.sha256, self.filename)

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


_FIELDS = tuple(f.name for f in dataclasses.fields(ReleaseRecord))
_REQUIRED = tuple(f.name for f in dataclasses.fields(ReleaseRecord) if f.default is dataclasses.MISSING)


def parse_records(data: Any, *, where: str) -> dict[str, ReleaseRecord]:
    """The records of a parsed ``published.json``, every field checked.

    Raises:
        ConfigError: naming the record and field at fault.
    """
    if not isinstance(data, Mapping) or set(data) != {"format_version", "published"}:
        raise ConfigError(f"{where} must be an object with exactly 'format_version' and 'published'")
    if type(data["format_version"]) is not int or data["format_version"] != FORMAT_VERSION:
        raise ConfigError(f"{where}: format_version {data['format_version']!r} is not {FORMAT_VERSION}; upgrade nlzoo")
    published = data["published"]
    if not isinstance(published, Mapping):
        raise ConfigError(f"{where}: 'published' must map 'arch.tag' names to records")
    return {name: _parse_record(name, value, where) for name, value in published.items()}


def _parse_record(name: Any, value: Any, where: str) -> ReleaseRecord:
    at = f"{where}: record {name!r}"
    if not isinstance(name, str) or name.count(".") != 1 or not all(name.split(".")):
        raise ConfigError(f"{at}: names must be 'arch.tag'")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{at} must be an object with {', '.join(_FIELDS)}")
    unknown, missing = sorted(set(value) - set(_FIELDS)), [k for k in _REQUIRED if k not in value]
    if unknown or missing:
        raise ConfigError(f"{at}: unknown keys {unknown}, missing keys {missing}; a record has {', '.join(_FIELDS)}")
    if not all(isinstance(v, str) and v for v in value.values()):
        raise ConfigError(f"{at}: every field must be a non-empty string")
    record = ReleaseRecord(**value)
    if record.repo_id.count("/") != 1 or not all(record.repo_id.split("/")):
        raise ConfigError(f"{at}: repo_id must be 'org/name'; got {record.repo_id!r}")
    if not COMMIT_RE.fullmatch(record.revision):
        raise ConfigError(f"{at}: revision must be the 40-hex commit the release made; got {record.revision!r}")
    for key in ("sha256", "source_sha256"):
        if not SHA256_RE.fullmatch(getattr(record, key)):
            raise ConfigError(f"{at}: {key} must be 64 lowercase hex digits; got {getattr(record, key)!r}")
    if not record.source_url.startswith(("https://", "http://")):
        raise ConfigError(f"{at}: source_url must be the published file's URL; got {record.source_url!r}")
    return record


def load_records(path: str | os.PathLike[str] = RECORD_PATH) -> dict[str, ReleaseRecord]:
    """The records in ``path`` (default: the package's ``published.json``).

    Raises:
        ConfigError: the file is missing, not JSON, or a record is invalid.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; it lists nlzoo's releases (an empty one is {_empty()!r})") from None
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON ({err})") from None
    return parse_records(data, where=str(path))


def save_records(records: Mapping[str, ReleaseRecord], path: str | os.PathLike[str] = RECORD_PATH) -> Path:
    """Write ``records`` to ``path`` atomically (a temporary sibling renamed over it), names sorted."""
    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "published": {name: records[name].to_dict() for name in sorted(records)},
    }
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    return path


def published_tag(name: str, tag: PretrainedTag, record: ReleaseRecord) -> PretrainedTag:
    """``tag`` loading from its release: status available, source :class:`HubWeights`, and the released
    source file's sha256 as the tag's ``origin_sha256`` (so a later conversion must use the same file).

    Raises:
        ConfigError: the record was made from another file than the tag names.
    """
    if tag.origin_url != record.source_url:
        raise ConfigError(
            f"{RECORD_PATH.name}: {name} was released from {record.source_url}, but the tag now names "
            f"{tag.origin_url}; release it again (`nlzoo release ORG --tags {name}`) or restore the tag"
        )
    if tag.origin_sha256 not in (None, record.source_sha256):
        raise ConfigError(
            f"{RECORD_PATH.name}: {name} was released from a file with sha256 {record.source_sha256}, but the tag "
            f"expects {tag.origin_sha256}; release it again"
        )
    return dataclasses.replace(tag, status="available", source=record.hub_weights(), origin_sha256=record.source_sha256)


@functools.cache
def registered_records() -> dict[str, ReleaseRecord]:
    """The package's records, read once (by the registry, as it registers tags)."""
    return load_records(RECORD_PATH)


def _empty() -> str:
    return json.dumps({"format_version": FORMAT_VERSION, "published": {}})
