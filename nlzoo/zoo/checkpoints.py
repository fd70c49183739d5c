"""``checkpoints.md``: every registered model and pretrained tag, generated from the registry.

Regenerate after adding or changing tags: ``python -m nlzoo.zoo.checkpoints > checkpoints.md``
(a test fails while the committed file and the registry disagree).
"""

from __future__ import annotations

from collections.abc import Iterable

from .config import PretrainedTag
from .families.sources import HubWeights
from .registry import ModelEntry, get_entry, list_models

REGENERATE = "python -m nlzoo.zoo.checkpoints > checkpoints.md"
STATUS = {
    "published": "nlzoo's own weights on the Hugging Face Hub, pinned to a commit and checked against their sha256",
    "available (third-party weights)": "fetched from their publisher (e.g. timm on the Hub) and adapted on load",
    "ready to convert": "a published checkpoint exists; `nlzoo.load` downloads and converts it on first use "
    "(or `nlzoo convert` by hand); nlzoo hosts no copy",
    "not available": "no weights exist yet",
    "no pretrained weights": "the architecture has no tags (random initialisation only)",
}
COLUMNS = (
    "Model",
    "Tag",
    "Task",
    "Dataset",
    "Source (license)",
    "Reported",
    "Verified by nlzoo",
    "Hub repo @ revision",
    "sha256",
    "Status",
)


def tag_status(tag: PretrainedTag) -> str:
    """The honest state of a tag's weights, in checkpoints.md's words."""
    if tag.status == "available":
        return "published" if isinstance(tag.source, HubWeights) else "available (third-party weights)"
    return {"convertible": "ready to convert", "unavailable": "not available"}[tag.status]


def render_checkpoints(entries: Iterable[ModelEntry] | None = None) -> str:
    """The markdown of checkpoints.md for ``entries`` (default: the whole registry)."""
    entries = list(entries) if entries is not None else [get_entry(name) for name in list_models()]
    rows = []
    for entry in entries:
        rows += [_row(entry, tag) for tag in entry.tags.values()] or [_untagged_row(entry)]
    counts = {status: sum(row[-1] == status for row in rows) for status in STATUS}
    published = counts["published"]
    lines = [
        "# Checkpoints",
        "",
        f"Generated from the model registry by `{REGENERATE}`; do not edit by hand.",
        "",
        f"{len(entries)} architectures, {sum(len(e.tags) for e in entries)} pretrained tags. "
        + (
            f"{published} of them published by nlzoo on the Hub."
            if published
            else "nlzoo has published no weights yet."
        )
        + ' Load a tag with `nlzoo.load("<model>.<tag>")`.',
        "",
        "Status:",
        *(f"- **{status}** ({counts[status]}): {meaning}" for status, meaning in STATUS.items()),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def _row(entry: ModelEntry, tag: PretrainedTag) -> tuple[str, ...]:
    hub = tag.source if isinstance(tag.source, HubWeights) else None
    return (
        f"`{entry.name}`",
        f"`{tag.tag}`",
        entry.task,
        tag.dataset,
        _source(tag, hub),
        ", ".join(f"{key} {value}" for key, value in tag.metrics.items()) or "—",
        tag.verified or "—",
        f"`{hub.repo_id}` @ `{hub.revision}`" if hub else "—",
        f"`{hub.sha256}`" if hub else "—",
        tag_status(tag),
    )


def _untagged_row(entry: ModelEntry) -> tuple[str, ...]:
    return (f"`{entry.name}`", "—", entry.task, *["—"] * (len(COLUMNS) - 4), "no pretrained weights")


def _source(tag: PretrainedTag, hub: HubWeights | None) -> str:
    parts = []
    if tag.recipe:
        parts.append(f"trained here with `{tag.recipe}`")
    if tag.source is not None and hub is None:
        parts.append(tag.source.describe())
    elif tag.origin_url:
        how = f"converted from the {tag.origin_format} checkpoint" if tag.origin_format else "from"
        parts.append(f"{how} {tag.origin_url}")
    if tag.license:
        parts.append(f"license {tag.license}")
    return "; ".join(parts) or "—"


if __name__ == "__main__":
    print(render_checkpoints(), end="")
