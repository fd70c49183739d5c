"""The registry of named architectures and their pretrained tags (timm's ``arch.tag`` convention).

An architecture is a plain builder function decorated with :func:`register_model`; its name is the
function's name. Tags are :class:`PretrainedTag` records, the first one being the default.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from ..errors import ConfigError, UnknownArgumentError, UnknownNameError
from .config import TASKS, DataConfig, PretrainedTag

F = TypeVar("F", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its builder, task, default data config and pretrained tags."""

    name: str
    builder: Callable[..., nn.Module]
    task: str
    data_config: DataConfig
    tags: Mapping[str, PretrainedTag] = field(default_factory=dict)
    # Dotted name of the classification head, dropped when num_classes changes; None: the module that the
    # built model's get_classifier() returns (for builders of several architectures, e.g. any timm model).
    # Several names where several layers follow num_classes (a detector's box and mask predictors).
    classifier: str | tuple[str, ...] | None = "fc"
    family: str = ""
    description: str = ""

    @property
    def default_tag(self) -> str | None:
        return next(iter(self.tags), None)

    def tag(self, tag: str) -> PretrainedTag:
        try:
            return self.tags[tag]
        except KeyError:
            close = difflib.get_close_matches(tag, self.tags, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(self.tags) or "none"
            raise UnknownNameError(f"unknown tag {tag!r} for {self.name}.{hint} Tags: {known}.") from None


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    *,
    task: str,
    data_config: DataConfig,
    tags: Iterable[PretrainedTag] = (),
    classifier: str | tuple[str, ...] | None = "fc",
) -> Callable[[F], F]:
    """Register a builder ``def arch(**model_args) -> nn.Module`` under its function name.

    Raises:
        ValueError: a duplicate name or tag, or an unknown task.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {TASKS}")

    def decorator(fn: F) -> F:
        name = fn.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered (by {_MODELS[name].family})")
        tag_map: dict[str, PretrainedTag] = {}
        for t in tags:
            if t.tag in tag_map:
                raise ValueError(f"duplicate tag {t.tag!r} for {name}")
            tag_map[t.tag] = _released(f"{name}.{t.tag}", t)
        doc = inspect.getdoc(fn) or ""
        _MODELS[name] = ModelEntry(
            name=name,
            builder=fn,
            task=task,
            data_config=data_config,
            tags=tag_map,
            classifier=classifier,
            family=fn.__module__.rsplit(".", 1)[-1],
            description=doc.split("\n", 1)[0],
        )
        return fn

    return decorator


def list_models(
    pattern: str | Iterable[str] = "*",
    *,
    pretrained: bool = False,
    task: str | None = None,
    exclude: str | Iterable[str] = (),
) -> list[str]:
    """Registered names matching fnmatch ``pattern`` (one or several), sorted.

    With ``pretrained=True`` the result lists ``arch.tag`` names whose weights can be fetched now
    (status ``available``); patterns then match those full names.

    Example:
        >>> "i3d_r50_nl" in list_models("i3d*")
        True
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    excludes = [exclude] if isinstance(exclude, str) else list(exclude)
    names: list[str] = []
    for entry in _MODELS.values():
        if task is not None and entry.task != task:
            continue
        if pretrained:
            names.extend(f"{entry.name}.{t.tag}" for t in entry.tags.values() if t.status == "available")
        else:
            names.append(entry.name)
    keep = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    keep = [n for n in keep if not any(fnmatch.fnmatchcase(n, p) for p in excludes)]
    return sorted(keep, key=_natural_key)


def get_entry(name: str) -> ModelEntry:
    """The entry for an architecture name (no tag); unknown names raise KeyError with close matches."""
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        prefix = name.split("_")[0]
        raise UnknownNameError(
            f"unknown model {name!r}.{hint} See nlzoo.list_models({prefix + '*'!r}) or `nlzoo models`."
        ) from None


def split_tag(name: str) -> tuple[str, str | None]:
    """``"i3d_r50_nl.kinetics400"`` -> ``("i3d_r50_nl", "kinetics400")``; no tag -> ``(name, None)``."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def model_info(name: str) -> ModelEntry:
    """The registry entry (task, data config, tags with their sources and reported metrics) for ``arch[.tag]``."""
    arch, tag = split_tag(name)
    entry = get_entry(arch)
    if tag is not None:
        entry.tag(tag)  # validates the tag
    return entry


def build_model(
    name: str, target: Callable[..., nn.Module], arch_args: Mapping[str, Any], overrides: Mapping[str, Any]
) -> nn.Module:
    """``target(**{**arch_args, **overrides})`` after checking every override against its signature.

    The one place user kwargs are validated: an unknown key raises TypeError naming it, close matches
    and the accepted keys (never swallowed, never passed deeper).
    """
    params = inspect.signature(target).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        for key in overrides:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=2)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise UnknownArgumentError(
                    f"{name}() got an unexpected argument {key!r}.{hint} Accepted: {', '.join(sorted(accepted))}."
                )
    return target(**{**arch_args, **overrides})


def register_variant(
    name: str,
    target: Callable[..., nn.Module],
    arch_args: Mapping[str, Any],
    *,
    doc: str,
    module: str,
    task: str,
    data_config: DataConfig,
    tags: Iterable[PretrainedTag] = (),
    classifier: str | tuple[str, ...] | None = "fc",
) -> Callable[..., nn.Module]:
    """Register ``name`` as ``target`` with fixed ``arch_args`` (a family's generated variants, like timm's
    ``resnet50`` over ``ResNet``) and return its builder, named and documented as if written by hand."""

    def builder(**model_args: Any) -> nn.Module:
        return build_model(name, target, arch_args, model_args)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__, builder.__module__ = doc, module
    return register_model(task=task, data_config=data_config, tags=tags, classifier=classifier)(builder)


def _released(name: str, tag: PretrainedTag) -> PretrainedTag:
    """``tag`` as nlzoo released it, when ``published.json`` has a record for ``name`` (see :mod:`.records`)."""
    from .records import published_tag, registered_records

    record = registered_records().get(name)
    return tag if record is None else published_tag(name, tag, record)


def publish_tag(name: str, record: Any) -> PretrainedTag:
    """Make the registered tag ``name`` (``"arch.tag"``) load from its new release ``record`` (a
    :class:`~nlzoo.zoo.records.ReleaseRecord`) in this process, as the next import will from published.json."""
    from .records import published_tag

    arch, tag_name = split_tag(name)
    entry = get_entry(arch)
    tag = published_tag(name, entry.tag(tag_name or ""), record)
    _MODELS[arch] = dataclasses.replace(entry, tags={**entry.tags, tag.tag: tag})
    return tag


def check_records_registered() -> None:
    """Refuse records in published.json that name no registered tag (a renamed or removed tag).

    Raises:
        ConfigError: naming the records.
    """
    from .records import RECORD_PATH, registered_records

    known = {f"{e.name}.{t}" for e in _MODELS.values() for t in e.tags}
    stray = sorted(set(registered_records()) - known)
    if stray:
        raise ConfigError(f"{RECORD_PATH}: records for tags that are not registered: {', '.join(stray)}")


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
