"""``nlzoo.load``: one entry point for registry names, ``arch.tag`` weights, local folders and Hub repos."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from .config import ModelConfig, PretrainedTag
from .folder import read_folder
from .registry import ModelEntry, get_entry, split_tag
from .weights import load_weights

HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"
NONLOCAL_KEYS = "*_nonlocal.*"


def load(
    name: str | os.PathLike[str],
    *,
    pretrained: bool | str | None = None,
    num_classes: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    **model_args: Any,
) -> nn.Module:
    """Build a model by name, with or without weights.

    Args:
        name: ``"i3d_r50_nl"`` (architecture), ``"i3d_r50_nl.kinetics400"`` (architecture + weights),
            ``"hf-hub:org/repo"`` or ``"hf-hub:org/repo@revision"`` (a published folder on the Hugging Face Hub),
            or a local model folder (a path, optionally prefixed ``"local-dir:"``).
        pretrained: for an architecture name, ``True`` loads its default tag and a string names a tag
            (``pretrained="imagenet"``); defaults to weights whenever the name itself points at them.
        num_classes: a new head size; when it differs from the weights', the classifier is re-initialised
            and the dropped keys are logged (every other mismatch is an error).
        cache_dir: download cache (defaults to huggingface_hub's, honouring ``HF_HOME``).
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        **model_args: architecture arguments (e.g. ``instantiation="dot_product"``), checked by name.

    Returns:
        The model, carrying its :class:`~nlzoo.zoo.config.ModelConfig` as ``model.nlzoo_config``.

    Example:
        >>> model = load("i3d_r18_nl", num_classes=10)
        >>> model.nlzoo_config.data_config.num_frames
        8
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a model name, 'hf-hub:org/repo' or a folder path; got {name!r}")
    cache = os.fspath(cache_dir) if cache_dir is not None else None
    if name.startswith(HUB_PREFIX):
        from .hub import download_folder

        folder = download_folder(name[len(HUB_PREFIX) :], cache_dir=cache, local_files_only=local_files_only)
        return load_folder(folder, num_classes=num_classes, **model_args)
    if name.startswith(LOCAL_PREFIX) or Path(name).is_dir():
        return load_folder(name.removeprefix(LOCAL_PREFIX), num_classes=num_classes, **model_args)
    if any(c in name for c in "/\\:"):
        raise ValueError(
            f"{name!r} is neither a registered model nor an existing folder. Use 'hf-hub:org/repo[@revision]' "
            "for a Hub repo, or the path of a folder holding config.json and model.safetensors."
        )
    arch, tag_name = split_tag(name)
    entry = get_entry(arch)
    if tag_name is not None and isinstance(pretrained, str) and pretrained != tag_name:
        raise ValueError(f"{name!r} names tag {tag_name!r} but pretrained={pretrained!r}; give one of them")
    if pretrained is None:
        pretrained = tag_name is not None
    if isinstance(pretrained, str):
        tag_name = pretrained
    elif pretrained and tag_name is None:
        tag_name = entry.default_tag
        if tag_name is None:
            raise ValueError(
                f"{arch} has no pretrained weights; load it without pretrained=True, or see "
                "nlzoo.list_models(pretrained=True)"
            )
    tag = entry.tag(tag_name) if tag_name is not None else None
    return _from_registry(entry, tag, bool(pretrained), num_classes, model_args, cache, local_files_only)


def _from_registry(
    entry: ModelEntry,
    tag: PretrainedTag | None,
    with_weights: bool,
    num_classes: int | None,
    model_args: dict[str, Any],
    cache_dir: str | None,
    local_files_only: bool,
) -> nn.Module:
    args = {**(tag.model_args if tag else {}), **model_args}
    data_config = entry.data_config.replace(**tag.data_config) if tag else entry.data_config
    head = num_classes if num_classes is not None else (tag.num_classes if tag else None)
    model = entry.builder(**args, **({"num_classes": head} if head is not None else {}))
    label_names = list(tag.label_names) if tag and tag.label_names and head == tag.num_classes else None
    provenance: dict[str, Any] = {}
    if with_weights and tag is not None:
        source = _available_source(entry, tag)
        state_dict = source.fetch(model, cache_dir=cache_dir, local_files_only=local_files_only)
        load_weights(
            model,
            state_dict,
            classifier=entry.classifier,
            reset_head=head != tag.num_classes,
            partial=tag.partial,
            source=f"{entry.name}.{tag.tag}",
        )
        provenance = {"source": source.describe(), "dataset": tag.dataset, "license": tag.license}
    model.nlzoo_config = ModelConfig(
        architecture=entry.name,
        task=entry.task,
        num_classes=getattr(model, "num_classes", head),
        data_config=data_config,
        model_args=args,
        label_names=label_names,
        pretrained_tag=tag.tag if (with_weights and tag) else None,
        provenance=provenance,
    )
    return model


def _available_source(entry: ModelEntry, tag: PretrainedTag) -> Any:
    full = f"{entry.name}.{tag.tag}"
    if tag.status == "available" and tag.source is not None:
        return tag.source
    if tag.status == "convertible":
        fmt = tag.origin_format or "<format>"
        raise FileNotFoundError(
            f"{full}: nlzoo does not host these weights yet. The published checkpoint is {tag.origin_url} "
            f"(license: {tag.license}). Download it, then run `nlzoo convert --source {fmt} --model {full} "
            f"CHECKPOINT OUT_DIR` and load OUT_DIR with nlzoo.load('OUT_DIR')."
        )
    raise FileNotFoundError(f"{full}: no weights are available ({tag.notes or 'not published by anyone'})")


def load_folder(directory: str | os.PathLike[str], *, num_classes: int | None = None, **model_args: Any) -> nn.Module:
    """Re-create a model saved by :func:`nlzoo.save_pretrained` (config.json + model.safetensors)."""
    cfg, state_dict = read_folder(directory)
    entry = get_entry(cfg.architecture)
    args = {**cfg.model_args, **model_args}
    head = cfg.num_classes if num_classes is None else num_classes
    model = entry.builder(**args, num_classes=head)
    load_weights(
        model, state_dict, classifier=entry.classifier, reset_head=head != cfg.num_classes, source=str(directory)
    )
    model.nlzoo_config = ModelConfig(
        architecture=cfg.architecture,
        task=cfg.task,
        num_classes=head,
        data_config=cfg.data_config,
        model_args=args,
        label_names=cfg.label_names if head == cfg.num_classes else None,
        pretrained_tag=cfg.pretrained_tag,
        provenance={**cfg.provenance, "folder": str(directory)},
    )
    return model
