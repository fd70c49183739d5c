"""``nlzoo.load``: one entry point for registry names, ``arch.tag`` weights, local folders and Hub repos.

Names and paths never compete: a bare name (``i3d_r50_nl``, ``i3d_r50_nl.kinetics400``) is always the
registry; a folder is a path (``./x``, ``/abs/x``, ``dir/x``, ``~/x``) or ``local-dir:x``; a Hub repo is
``hf-hub:org/repo[@revision]``; any timm architecture is ``timm:arch[.tag]``. A folder in the working
directory named like a registry model is ignored (and a warning says how to load it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, InputNotFoundError, OriginUnavailableError, UnknownNameError, WeightsError
from .config import DataConfig, ModelConfig, PretrainedTag, check_num_classes
from .converters.published import PublishedCheckpoint
from .folder import read_folder
from .hub import ChecksumMismatchError, HubNotFoundError, HubUnavailableError
from .meta import build_on_meta
from .registry import ModelEntry, get_entry, split_tag
from .weights import load_weights

log = logging.getLogger("nlzoo")

HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"
TIMM_PREFIX = "timm:"
NONLOCAL_KEYS = "*_nonlocal.*"
RANDOM_HINT = "in Python, pretrained=False (or nlzoo.create_model(name)) builds a randomly initialised network instead"


def load(
    name: str | os.PathLike[str],
    *,
    pretrained: bool | str = True,
    num_classes: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    **model_args: Any,
) -> nn.Module:
    """A model with its weights: the architecture's default tag (the paper's weights where they exist), a
    named tag, a local folder or a Hub repo. ``pretrained=False`` builds it randomly initialised.

    Args:
        name: ``"i3d_r50_nl"`` (architecture: its default tag), ``"i3d_r50_nl.kinetics400"`` (architecture +
            tag), ``"hf-hub:org/repo"`` or ``"hf-hub:org/repo@revision"`` (a published folder on the Hugging
            Face Hub), a folder path (``"./folder"``, ``"/abs/folder"``, ``"local-dir:folder"``), or
            ``"timm:<arch>[.<tag>]"``: any timm architecture, with non-local blocks after the submodules named
            by ``nonlocal_after=[...]``, timm's data config and timm's weights. A bare name is always the
            registry, never a folder of that name.
        pretrained: ``True`` (default) loads the default tag of an architecture name; a string names a tag
            (``pretrained="imagenet"``); ``False`` builds the architecture with random weights (as
            :func:`create_model`; with ``arch.tag``, the tag's architecture and data settings, random weights).
        num_classes: a new head size (a positive int); when it differs from the weights', the classifier is
            re-initialised and the dropped keys are logged (every other mismatch is an error).
        cache_dir: download cache (defaults to huggingface_hub's, honouring ``HF_HOME``).
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        features_only: return the stage feature maps instead (timm's ``features_only``; see
            :class:`~nlzoo.models.features.FeaturesOnly`), for ``out_indices`` (default all stages).
        **model_args: architecture arguments (e.g. ``instantiation="dot_product"``), checked by name.
            Reserved for a later ``features_only=True, out_indices=...`` (timm's feature-extraction contract).

    Returns:
        The model, carrying its :class:`~nlzoo.zoo.config.ModelConfig` as ``model.nlzoo_config``.

    Raises:
        UnknownNameError: an unknown architecture or tag (with close matches).
        ConfigError: a bad ``num_classes`` or ``pretrained``, or contradicting arguments.
        OriginUnavailableError / HubUnavailableError: the weights are not cached and cannot be downloaded
            now (the message says that ``pretrained=False`` gives a random network).

    Example:
        >>> model = load("i3d_r18_nl", pretrained=False, num_classes=10)
        >>> model.nlzoo_config.data_config.num_frames
        8
    """
    if features_only or out_indices is not None:
        from ..models.features import features_only_model

        kwargs = {"pretrained": pretrained, "num_classes": num_classes, "local_files_only": local_files_only}
        full = load(name, cache_dir=cache_dir, **kwargs, **model_args)
        return features_only_model(full, features_only=features_only, out_indices=out_indices)
    is_path_object = isinstance(name, os.PathLike)  # a Path is always a folder, never a registry name
    if is_path_object:
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name must be a model name, 'hf-hub:org/repo' or a folder path; got {name!r}")
    pretrained = _check_pretrained(pretrained)
    if num_classes is not None:
        check_num_classes(num_classes)
    cache = os.fspath(cache_dir) if cache_dir is not None else None
    if name.startswith(HUB_PREFIX):
        _weights_only(name, pretrained)
        from .hub import download_folder, split_revision

        repo = name[len(HUB_PREFIX) :]
        folder = download_folder(repo, cache_dir=cache, local_files_only=local_files_only)
        origin = {"hub_repo": split_revision(repo)[0], "hub_revision": folder.name}
        return _load_folder(folder, num_classes, model_args, origin, check_digest=False)  # hub_file checked it
    if name.startswith(TIMM_PREFIX):
        return _from_timm(name[len(TIMM_PREFIX) :], pretrained, num_classes, model_args, cache, local_files_only)
    if is_path_object or name.startswith(LOCAL_PREFIX) or is_path(name):
        _weights_only(name, pretrained)
        return load_folder(_folder_path(name), num_classes=num_classes, **model_args)
    arch, tag_name = split_tag(name)
    entry = registry_entry(arch, name)
    tag_name, with_weights = _pick_tag(name, tag_name, pretrained, entry.default_tag)
    tag = entry.tag(tag_name) if tag_name is not None else None
    return _from_registry(entry, tag, with_weights, num_classes, model_args, cache, local_files_only)


def resolve_data_config(name: str, *, pretrained: bool | str = True) -> DataConfig:
    """How inputs must be prepared for ``name``, read without building or downloading anything.

    The same names as :func:`load`, with the same rule: a bare architecture means its default tag
    (``pretrained=False``: the architecture's own data config), ``arch.tag`` that tag, a folder path its
    validated config.json.

    Raises:
        ConfigError: a Hub name (its config is known only once downloaded) or a bad config.json.
        UnknownNameError: an unknown architecture or tag.
    """
    from .folder import read_config

    pretrained = _check_pretrained(pretrained)
    if name.startswith((HUB_PREFIX, TIMM_PREFIX)):
        raise ConfigError(
            f"{name!r}: its data config is known once the model is loaded; load it and read model.nlzoo_config"
        )
    if name.startswith(LOCAL_PREFIX) or is_path(name):
        return read_config(_folder_path(name)).data_config
    arch, tag_name = split_tag(name)
    entry = registry_entry(arch, name)
    if tag_name is not None or (entry.tags and pretrained is not False):
        tag_name, _ = _pick_tag(name, tag_name, pretrained, entry.default_tag)
        return entry.data_config.replace(**entry.tag(tag_name).data_config)
    return entry.data_config  # random init, or an architecture without tags


def create_model(
    name: str, *, pretrained: bool | str = False, num_classes: int | None = None, **kwargs: Any
) -> nn.Module:
    """timm's name for building a model: like :func:`load`, but randomly initialised unless ``pretrained`` says
    otherwise.

    Example:
        >>> create_model("c2d_r18_nl", num_classes=5).num_classes
        5
    """
    return load(name, pretrained=pretrained, num_classes=num_classes, **kwargs)


def is_path(name: str) -> bool:
    """Whether ``name`` is spelled as a path (``./x``, ``../x``, ``/x``, ``~/x``, ``dir/x``), not a registry name."""
    return name.startswith(("./", "../", "~", ".\\", "..\\")) or "/" in name or os.sep in name or name in (".", "..")


def _folder_path(name: str) -> Path:
    path = Path(name.removeprefix(LOCAL_PREFIX)).expanduser()
    if not path.is_dir():
        hub_hint = f" For a Hub repo use 'hf-hub:{name}'." if name.count("/") == 1 and not path.exists() else ""
        raise InputNotFoundError(
            f"model folder {name!r} does not exist (or is not a folder).{hub_hint} A bare name loads from the "
            "registry (see `nlzoo models`); 'timm:<arch>' builds any timm architecture."
        )
    return path


def registry_entry(arch: str, name: str) -> ModelEntry:
    """The registry entry for a bare name; a same-named folder is ignored, with a hint how to load it instead."""
    folder_exists = Path(name).is_dir()
    try:
        entry = get_entry(arch)
    except UnknownNameError as err:
        if folder_exists:
            raise UnknownNameError(
                f"{err} A folder {name!r} exists here: bare names are registry names; load the folder as "
                f"'./{name}' or 'local-dir:{name}'."
            ) from None
        raise
    if folder_exists:
        log.warning(
            "%r names the registry model; the folder of that name here is ignored (load it as './%s')", name, name
        )
    return entry


def _check_pretrained(pretrained: Any) -> bool | str:
    if pretrained is None:  # the default (older callers passed None for "whatever the name says")
        return True
    if isinstance(pretrained, bool) or (isinstance(pretrained, str) and pretrained):
        return pretrained
    raise ConfigError(f"pretrained must be True, False or a tag name like 'kinetics400'; got {pretrained!r}")


def _weights_only(name: str, pretrained: bool | str) -> None:
    if pretrained is not True:
        raise ConfigError(
            f"{name!r} is a model folder, which holds its own weights; pretrained={pretrained!r} applies to "
            "registry names only. For a random network build the architecture: nlzoo.create_model('<arch>')"
        )


def _pick_tag(
    name: str, tag_name: str | None, pretrained: bool | str, default_tag: str | None
) -> tuple[str | None, bool]:
    """Which tag a name + ``pretrained`` select, and whether its weights load."""
    if tag_name is not None and isinstance(pretrained, str) and pretrained != tag_name:
        raise ConfigError(f"{name!r} names tag {tag_name!r} but pretrained={pretrained!r}; give one of them")
    if pretrained is False:  # random weights; a named tag still gives its architecture and data settings
        return tag_name, False
    if isinstance(pretrained, str):
        tag_name = pretrained
    if tag_name is None:
        tag_name = default_tag
        if tag_name is None:
            raise WeightsError(f"{name} has no pretrained weights; {RANDOM_HINT}")
    return tag_name, True


def _from_timm(
    spec: str,
    pretrained: bool | str | None,
    num_classes: int | None,
    model_args: dict[str, Any],
    cache_dir: str | None,
    local_files_only: bool,
) -> nn.Module:
    """``timm:<arch>[.<tag>]``: the registry's generic timm builder with timm's data config and weights."""
    from timm.data import resolve_model_data_config

    from .families.image import TIMM_ENTRY, timm_tag
    from .families.sources import TimmWeights, timm_data_config

    if "timm_name" in model_args:
        raise ConfigError(f"'timm:{spec}' names the timm architecture already; drop timm_name=")
    arch, tag_name = split_tag(spec)
    default_tag = TimmWeights(arch).pretrained_cfg().tag if pretrained is True and tag_name is None else None
    tag_name, with_weights = _pick_tag(f"timm:{spec}", tag_name, pretrained, default_tag)
    tag = timm_tag(f"{arch}.{tag_name}") if tag_name is not None else None
    entry = get_entry(TIMM_ENTRY)
    model = _from_registry(
        entry, tag, with_weights, num_classes, {"timm_name": arch, **model_args}, cache_dir, local_files_only
    )
    if tag is None:  # no weights named: the data config timm gives the architecture
        model.nlzoo_config.data_config = timm_data_config(resolve_model_data_config(model))
    return model


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
    build_args = {**args, **({"num_classes": head} if head is not None else {})}
    label_names = list(tag.label_names) if tag and tag.label_names and head == tag.num_classes else None
    provenance: dict[str, Any] = {}
    if with_weights and tag is not None:
        source = _available_source(entry, tag)
        model = _build_with_weights(entry, tag, source, build_args, cache_dir, local_files_only)
        provenance = _tag_provenance(entry, tag, source)
        if head != tag.num_classes:
            provenance = _with_new_head(provenance, head)
    else:
        model = entry.builder(**build_args)
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


def _build_with_weights(
    entry: ModelEntry,
    tag: PretrainedTag,
    source: Any,
    build_args: dict[str, Any],
    cache_dir: str | None,
    local_files_only: bool,
) -> nn.Module:
    """The model holding a tag's weights: adopted by a meta-device build when they cover it exactly (a
    published checkpoint), else copied into a normally built model (a new head, new non-local blocks).

    Sources receive the meta-device model: they read only its key names and shapes (to inflate, to size).
    """
    meta = _meta_build(entry.builder, build_args)
    template = meta if meta is not None else entry.builder(**build_args)
    try:
        state_dict = source.fetch(template, cache_dir=cache_dir, local_files_only=local_files_only)
    except (HubUnavailableError, OriginUnavailableError) as err:
        where = f" The original checkpoint is at {tag.origin_url}." if tag.origin_url else ""
        raise type(err)(
            f"{entry.name}.{tag.tag}: the weights are not cached and cannot be downloaded now; {RANDOM_HINT}. "
            f"{err}{where}"
        ) from err
    except (HubNotFoundError, ChecksumMismatchError) as err:
        where = f" The original checkpoint is at {tag.origin_url}." if tag.origin_url else ""
        raise type(err)(f"{entry.name}.{tag.tag}: {err}{where}") from err
    new_head = build_args.get("num_classes", tag.num_classes) != tag.num_classes
    if meta is not None and not new_head and _adopt(meta, state_dict):
        return meta
    model = entry.builder(**build_args) if meta is not None else template
    load_weights(
        model,
        state_dict,
        classifier=classifier_name(entry, model),
        reset_head=new_head,
        partial=tag.partial,
        source=f"{entry.name}.{tag.tag}",
    )
    return model


def _tag_provenance(entry: ModelEntry, tag: PretrainedTag, source: Any) -> dict[str, Any]:
    """What a model loaded from a tag records about its weights (saved in config.json, shown on its card)."""
    facts = {
        "tag": f"{entry.name}.{tag.tag}",
        "source": source.describe(),
        "dataset": tag.dataset,
        "license": tag.license,
        "origin_url": tag.origin_url,
        "origin_format": tag.origin_format,
        "metrics": dict(tag.metrics),
        "verified": tag.verified,
        "recipe": tag.recipe,
        "notes": tag.notes,
    }
    return {key: value for key, value in facts.items() if value}


def _with_new_head(provenance: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """Provenance of weights whose classifier was replaced: the source's accuracy no longer applies."""
    kept = {key: value for key, value in provenance.items() if key != "metrics"}
    return {**kept, "classifier": f"re-initialised for {num_classes} classes; the source's accuracy does not apply"}


def _available_source(entry: ModelEntry, tag: PretrainedTag) -> Any:
    full = f"{entry.name}.{tag.tag}"
    if tag.status == "available" and tag.source is not None:
        return tag.source
    if tag.status == "convertible" and tag.origin_url and tag.origin_format:
        return PublishedCheckpoint(full, tag.origin_url, tag.origin_format, tag.license, tag.origin_sha256)
    raise OriginUnavailableError(
        f"{full}: no weights are available ({tag.notes or 'not published by anyone'}); {RANDOM_HINT}"
    )


def load_folder(directory: str | os.PathLike[str], *, num_classes: int | None = None, **model_args: Any) -> nn.Module:
    """Re-create a model saved by :func:`nlzoo.save_pretrained` (config.json + model.safetensors).

    The config is validated field by field and the weights must have the sha256 the config records.
    """
    if num_classes is not None:
        check_num_classes(num_classes)
    return _load_folder(directory, num_classes, model_args, {"folder": str(directory)})


def _load_folder(
    directory: str | os.PathLike[str],
    num_classes: int | None,
    model_args: dict[str, Any],
    origin: dict[str, str],
    *,
    check_digest: bool = True,
) -> nn.Module:
    cfg, state_dict = read_folder(directory, check_digest=check_digest)
    entry = get_entry(cfg.architecture)
    args = {**cfg.model_args, **model_args}
    head = cfg.num_classes if num_classes is None else num_classes
    model = (
        build_from_state_dict(entry.builder, state_dict, **args, num_classes=head) if head == cfg.num_classes else None
    )
    if model is None:
        model = entry.builder(**args, num_classes=head)
        load_weights(
            model,
            state_dict,
            classifier=classifier_name(entry, model),
            reset_head=head != cfg.num_classes,
            source=str(directory),
        )
    provenance = {**cfg.provenance, **origin}
    if head != cfg.num_classes:
        provenance = _with_new_head(provenance, head)
    model.nlzoo_config = ModelConfig(
        architecture=cfg.architecture,
        task=cfg.task,
        num_classes=head,
        data_config=cfg.data_config,
        model_args=args,
        label_names=cfg.label_names if head == cfg.num_classes else None,
        pretrained_tag=cfg.pretrained_tag,
        provenance=provenance,
    )
    return model


def build_from_state_dict(
    builder: Callable[..., nn.Module], state_dict: Mapping[str, torch.Tensor], **kwargs: Any
) -> nn.Module | None:
    """``builder(**kwargs)`` holding exactly ``state_dict``'s tensors, without the random init it would overwrite.

    The model is built on the meta device (no memory, no init: ~90% of the time of loading an R50) and then
    adopts the checkpoint's tensors (``load_state_dict(assign=True)``). The result equals building normally
    and copying the weights in, bit for bit.

    Returns:
        The model, or ``None`` when the checkpoint does not cover it exactly (other keys, shapes or dtypes,
        tied parameters, buffers that are not saved, a builder that needs real values): the caller then
        builds normally and the strict loader explains any mismatch.
    """
    model = _meta_build(builder, kwargs)
    return model if model is not None and _adopt(model, state_dict) else None


def _meta_build(builder: Callable[..., nn.Module], kwargs: Mapping[str, Any]) -> nn.Module | None:
    try:
        return build_on_meta(builder, **kwargs)
    except (RuntimeError, NotImplementedError):  # e.g. a builder calling .item() on a tensor
        return None


def _adopt(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Give a meta-device ``model`` the tensors of ``state_dict`` if they cover it exactly; whether it did."""
    own = model.state_dict()
    if own.keys() != state_dict.keys():
        return False
    if any((value.shape, value.dtype) != (state_dict[key].shape, state_dict[key].dtype) for key, value in own.items()):
        return False
    tensors = [
        t for _, t in (*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False))
    ]
    if not len(tensors) == len({id(t) for t in tensors}) == len(own):  # tied weights or non-persistent buffers
        return False
    model.load_state_dict(state_dict, assign=True)
    return True


def classifier_name(entry: ModelEntry, model: nn.Module) -> str | tuple[str, ...]:
    """The head's dotted name: the registry's, else the module the model's ``get_classifier()`` returns."""
    if entry.classifier is not None:
        return entry.classifier
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    name = next((n for n, m in model.named_modules() if m is head and n), None)
    if name is None:
        raise ValueError(
            f"cannot tell which module of {type(model).__name__} is the classifier: get_classifier() returned "
            f"{type(head).__name__}, not one of its submodules"
        )
    return name
