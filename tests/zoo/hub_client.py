"""The code under test, run in a fresh interpreter by hub_server.run_client (huggingface_hub reads HF_* at import).

Reads a JSON list of steps on stdin and prints one JSON list of results:
- ``{"op": "load", "name": ..., "kwargs": {...}}`` -> ``nlzoo.load``: ``{"ok", "digest", "provenance"}`` or
  ``{"ok": false, "error", "bases", "message"}``;
- ``{"op": "register", "arch": ..., "base": ..., "tags": [{tag, num_classes, repo_id, revision, sha256}]}``
  registers ``arch`` (the ``base`` architecture) with :class:`HubWeights` tags, the way a family file does;
- ``{"op": "cached", "repo_id", "filename", "revision"}`` -> ``{"cached": bool}``;
- ``{"op": "corrupt_cache", ...same keys}`` flips bytes of the cached file in place (same size).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over every state-dict key and tensor byte: equal digests mean identical weights."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _load(step: dict[str, Any]) -> dict[str, Any]:
    import nlzoo

    try:
        model = nlzoo.load(step["name"], **step.get("kwargs", {}))
    except Exception as err:
        return {
            "ok": False,
            "error": type(err).__name__,
            "bases": [c.__name__ for c in type(err).__mro__],
            "message": str(err),
        }
    return {"ok": True, "digest": state_digest(model), "provenance": model.nlzoo_config.provenance}


def _register(step: dict[str, Any]) -> dict[str, Any]:
    from nlzoo.zoo import PretrainedTag, get_entry, register_model
    from nlzoo.zoo.families.sources import HubWeights

    base = get_entry(step["base"])
    tags = [
        PretrainedTag(
            tag=t["tag"],
            dataset="synthetic",
            num_classes=t["num_classes"],
            status="available",
            source=HubWeights(t["repo_id"], t["revision"], t["sha256"]),
            origin_url="https://example.invalid/original-checkpoint",
        )
        for t in step["tags"]
    ]

    def builder(**model_args: Any) -> torch.nn.Module:
        return base.builder(**model_args)

    builder.__name__ = step["arch"]
    register_model(task=base.task, data_config=base.data_config, tags=tags)(builder)
    return {"ok": True}


def _cached_path(step: dict[str, Any]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(step["repo_id"], step["filename"], revision=step.get("revision"))
    return Path(found) if isinstance(found, str) else None


def _corrupt_cache(step: dict[str, Any]) -> dict[str, Any]:
    blob = _cached_path(step).resolve()
    data = bytearray(blob.read_bytes())
    data[-64:] = bytes(b ^ 0xFF for b in data[-64:])
    blob.write_bytes(bytes(data))
    return {"ok": True}


OPS = {
    "load": _load,
    "register": _register,
    "cached": lambda step: {"cached": _cached_path(step) is not None},
    "corrupt_cache": _corrupt_cache,
}

if __name__ == "__main__":
    results = [OPS[step["op"]](step) for step in json.loads(sys.stdin.read())]
    print(json.dumps(results))
