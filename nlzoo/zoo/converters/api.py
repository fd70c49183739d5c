"""``convert_checkpoint``: a published checkpoint in, an nlzoo model folder (``nlzoo.load``-able) out."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError, OutputExistsError, UnknownArgumentError
from ..config import ModelConfig, PretrainedTag
from ..folder import save_pretrained
from ..registry import ModelEntry, get_entry, split_tag
from ..weights import load_weights
from .base import ConversionError, SourceFormat, fit_to_model
from .caffe2 import CAFFE2
from .mmaction2 import MMACTION2
from .mmdetection import MMDETECTION
from .pyslowfast import PYSLOWFAST
from .pytorchvideo import PYTORCHVIDEO
from .reading import RawCheckpoint, read_checkpoint, sha256_file, weight_tables

SOURCES: dict[str, SourceFormat] = {f.name: f for f in (PYSLOWFAST, CAFFE2, MMACTION2, PYTORCHVIDEO, MMDETECTION)}

Progress = Callable[[str], None]


def convert_checkpoint(
    source: str | None,
    model: str,
    input_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    **model_args: Any,
) -> Path:
    """Convert a PySlowFast / Caffe2 / mmaction2 / pytorchvideo / mmdetection checkpoint into an nlzoo model folder.

    Every weight of the file must find its place and every parameter and buffer of the model must be
    filled (a few, listed per format, are exactly zero by construction); anything else is an error that
    lists the keys and names the architecture the checkpoint looks like. The folder's ``config.json``
    records the source format, the input's file name and sha256, and (with a tag) its dataset, license,
    reported metrics and labels.

    Args:
        source: ``"pyslowfast"``, ``"caffe2"``, ``"mmaction2"``, ``"pytorchvideo"`` or ``"mmdetection"``; ``None``
            detects it from the file's content (the detected format is reported through ``progress`` and recorded).
        model: a registered architecture (``"i3d_r50_nl"``) or, for a published checkpoint, its registry
            tag (``"i3d_r50_nl.kinetics400"``), which carries the exact architecture settings. A bare
            architecture given a published file under its original name picks that file's tag.
        input_path: the checkpoint file. Loaded with ``torch.load(weights_only=True)`` or, for Caffe2
            pickles, a restricted unpickler: no code from the file runs.
        output_dir: the folder to write (``config.json``, ``model.safetensors``, ``README.md``).
        progress: called with a short description as each step starts.
        **model_args: architecture arguments on top of the format's and the tag's (e.g.
            ``nonlocal_args={"instantiation": "dot_product"}`` where the checkpoint does not say).

    Returns:
        The output folder.

    Raises:
        ValueError: unknown source, a file of another format (the message names the right ``--source``),
            keys that do not fit the model, or settings the checkpoint cannot supply.
        KeyError: an unknown model or tag name (with close matches).
        TypeError: an unknown architecture argument (with close matches), or ``num_classes``.
        FileNotFoundError: no input file.
        FileExistsError: ``output_dir`` is an existing file.

    Example:
        >>> convert_checkpoint("caffe2", "i3d_r50_nl.kinetics400", "I3D_NLN_8x8_R50.pkl", "i3d_nl")  # doctest: +SKIP
        >>> nlzoo.load("i3d_nl")  # doctest: +SKIP
    """
    report = progress or (lambda _: None)
    input_path, output_dir = Path(input_path), Path(output_dir)
    if input_path.is_dir() and (input_path / "config.json").is_file():
        raise ConversionError(
            f"{input_path} is already an nlzoo model folder; load it with nlzoo.load('./{input_path}')"
        )
    fmt = get_format(source) if source is not None else None
    arch, tag_name = split_tag(model)
    entry = get_entry(arch)
    if "num_classes" in model_args:
        raise UnknownArgumentError(
            "num_classes comes from the checkpoint's classifier; it is not a conversion argument"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputExistsError(f"output {output_dir} exists and is not a folder; choose another OUTPUT_DIR")

    report(f"reading {input_path.name}")
    raw = read_checkpoint(input_path)
    if fmt is None:
        fmt = detect_format(raw)
        if fmt is None:
            source_weights(PYSLOWFAST, raw)  # raises the message that says what the file holds
            raise ConversionError(f"{input_path.name} is in none of the formats nlzoo converts ({', '.join(SOURCES)})")
        report(f"detected {fmt.name}: {fmt.description}")
    tag = entry.tag(tag_name) if tag_name else _tag_of_file(entry, fmt, input_path.name)
    if tag is not None and tag.origin_format not in (None, fmt.name):
        raise ConversionError(
            f"{entry.name}.{tag.tag} is published as a {tag.origin_format} checkpoint ({tag.origin_url}); "
            f"convert it with --source {tag.origin_format} (or leave --source out)"
        )
    weights = source_weights(fmt, raw)
    report(f"hashing {input_path.name} (sha256)")
    digest = sha256_file(input_path)
    report(f"mapping {len(weights)} {fmt.name} entries to nlzoo names")
    mapped = fmt.map_keys(weights)
    derived, why = fmt.derive(mapped) if fmt.derive is not None else ({}, "")
    if derived:
        report(f"{why}: {len(derived)} entries derived")
        mapped = {**mapped, **derived}
    adapted = ""
    if fmt.adapt is not None:
        mapped, adapted = fmt.adapt(mapped, raw.payload)
        report(adapted)
    args, evidence = _resolve_model_args(fmt, tag, mapped, raw.payload, model_args)
    num_classes = int(mapped[fmt.classifier].shape[0]) if fmt.classifier in mapped else 0
    if tag is not None and num_classes != tag.num_classes:
        raise ConversionError(
            f"the checkpoint has {num_classes} classes but {entry.name}.{tag.tag} has {tag.num_classes}; "
            "is this the published file?"
        )
    report(f"building {entry.name}")
    net = entry.builder(**args, num_classes=num_classes)
    tensors = fit_to_model(fmt, mapped, net.state_dict(), model_name=entry.name)
    load_weights(net, tensors, source=f"{input_path.name} ({fmt.name})")
    net.nlzoo_config = _model_config(entry, tag, fmt, args, num_classes, input_path.name, digest)
    net.nlzoo_config.provenance["conversion"].update(detected=source is None, settings_from_file=evidence)
    if derived:
        net.nlzoo_config.provenance["conversion"]["derived"] = why
    if adapted:
        net.nlzoo_config.provenance["conversion"]["adapted"] = adapted
    report(f"writing {output_dir}")
    return save_pretrained(net, output_dir)


def _tag_of_file(entry: ModelEntry, fmt: SourceFormat, file_name: str) -> PretrainedTag | None:
    """The tag whose published file has this name, so ``--model ARCH`` on a published file still gets the
    architecture settings, labels and provenance of its tag."""
    hits = [
        t
        for t in entry.tags.values()
        if t.origin_format == fmt.name and t.origin_url and t.origin_url.rsplit("/", 1)[-1] == file_name
    ]
    return hits[0] if len(hits) == 1 else None


def get_format(source: str) -> SourceFormat:
    """The :class:`SourceFormat` called ``source``; an unknown name lists the known ones."""
    try:
        return SOURCES[source]
    except KeyError:
        raise ConfigError(f"unknown checkpoint source {source!r}; choose one of {', '.join(SOURCES)}") from None


def detect_format(raw: RawCheckpoint) -> SourceFormat | None:
    """The format whose signature key the file holds (where that format keeps its weights, in its kind of
    container: a Caffe2 blob pickle, or a torch file of PySlowFast, pytorchvideo or mmaction2/mmengine), if any."""
    tables = weight_tables(raw.payload)
    for fmt in SOURCES.values():
        for where in (fmt.weights_key, ""):
            if where in tables and raw.container == fmt.container and any(_is_signature(fmt, k) for k in tables[where]):
                return fmt
    for fmt in SOURCES.values():  # the right keys in an unusual container: still say which format they are
        for where in (fmt.weights_key, ""):
            if where in tables and any(_is_signature(fmt, k) for k in tables[where]):
                return fmt
    return None


def source_weights(fmt: SourceFormat, raw: RawCheckpoint) -> Mapping[str, Any]:
    """The weights dict of ``raw`` as ``fmt`` stores it; a file of another format says which one it is.

    Raises:
        ConversionError: the file is not in ``fmt`` (naming the detected format when there is one).
    """
    tables = weight_tables(raw.payload)
    for where in (fmt.weights_key, ""):
        table = tables.get(where)
        if table is not None and raw.container == fmt.container and any(_is_signature(fmt, k) for k in table):
            return table
    name = raw.path.name
    detected = detect_format(raw)
    if detected is not None and detected is not fmt:
        raise ConversionError(f"{name} is {detected.description}, not {fmt.description}; use --source {detected.name}")
    if "" in tables and any(str(k).startswith(("conv1.", "layer1.")) for k in tables[""]):
        raise ConversionError(
            f"{name} already uses torchvision/nlzoo key names (conv1, layer1, ...); it needs no conversion: "
            "load it with nlzoo.zoo.load_weights(model, state_dict) and save it with nlzoo.save_pretrained"
        )
    found = list(tables.get("", {}))[:8] if tables else type(raw.payload).__name__
    raise ConversionError(
        f"{name} is not {fmt.description} nor any format nlzoo converts ({', '.join(SOURCES)}); it holds {found}"
    )


def _is_signature(fmt: SourceFormat, key: Any) -> bool:
    return isinstance(key, str) and re.fullmatch(fmt.signature, key) is not None


def _resolve_model_args(
    fmt: SourceFormat,
    tag: PretrainedTag | None,
    mapped: Mapping[str, Any],
    payload: Any,
    user_args: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Architecture args: the format's, then the file's own settings, then the tag's, then the user's; and the
    fields of the file that decided settings (``{"cfg NONLOCAL.INSTANTIATION": "softmax"}``).

    Non-local settings are only added when the checkpoint has non-local blocks.
    """
    args: dict[str, Any] = dict(fmt.model_args)
    nonlocal_args: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    has_nonlocal = any("_nonlocal." in k for k in mapped)
    if has_nonlocal:
        nonlocal_args.update(fmt.nonlocal_args)
        if fmt.read_settings is not None:
            from_file, evidence = fmt.read_settings(payload)
            nonlocal_args.update(from_file)
        nonlocal_args.update(_instantiation_from_keys(mapped))
    for layer in (dict(tag.model_args) if tag else {}, dict(user_args)):
        nonlocal_args.update(layer.pop("nonlocal_args", None) or {})
        args.update(layer)
    if has_nonlocal:
        nonlocal_args.setdefault("instantiation", fmt.default_instantiation)
        _check_nonlocal_args(fmt, nonlocal_args)
    if nonlocal_args:
        args["nonlocal_args"] = nonlocal_args
    return args, evidence


def _instantiation_from_keys(mapped: Mapping[str, Any]) -> dict[str, Any]:
    """Pairwise functions the keys prove: GCNet's transform, its query-independent context; a projection,
    concatenation; no theta, the plain Gaussian."""
    if any("_nonlocal.channel_add_conv." in k or "_nonlocal.channel_mul_conv." in k for k in mapped):
        return {"instantiation": "context"}
    if any("_nonlocal.pairwise." in k for k in mapped):
        return {"instantiation": "concatenation"}
    if not any("_nonlocal.conv_theta." in k for k in mapped):
        return {"instantiation": "gaussian"}
    return {}


def suggested_model_args(fmt: SourceFormat, *, instantiation: str | None = None) -> dict[str, str]:
    """For each setting ``fmt`` offers (its words), the exact ``--model-args`` JSON that reproduces it."""
    return {
        setting: json.dumps({"nonlocal_args": dict(args)})
        for setting, args in fmt.nonlocal_choices.items()
        if instantiation is None or args.get("instantiation") == instantiation
    }


def _check_nonlocal_args(fmt: SourceFormat, nonlocal_args: Mapping[str, Any]) -> None:
    def how(instantiation: str | None = None) -> str:
        options = "; ".join(
            f"{setting}: --model-args '{text}'"
            for setting, text in suggested_model_args(fmt, instantiation=instantiation).items()
        )
        return (
            f"Convert with a registry tag (--model ARCH.TAG; see nlzoo.model_info(ARCH).tags), or say what the "
            f"checkpoint was trained with. {fmt.name}: {options}"
        )

    if nonlocal_args.get("instantiation") is None:
        raise ConversionError(
            f"{fmt.name} checkpoints do not always record which pairwise function their non-local blocks use "
            f"(dot product and embedded Gaussian have the same weights) and this one does not. {how()}"
        )
    if (
        fmt.softmax_scale_required
        and nonlocal_args["instantiation"] == "embedded_gaussian"
        and "softmax_scale" not in nonlocal_args
    ):
        raise ConversionError(
            f"{fmt.name}'s embedded Gaussian scales the affinity only with use_scale=True (softmax_scale = "
            "inner_channels ** -0.5, nlzoo's default); its I3D-NL configs use use_scale=False (softmax_scale=1.0), "
            f"and this checkpoint does not say which. {how('embedded_gaussian')}"
        )


def _model_config(
    entry: ModelEntry,
    tag: PretrainedTag | None,
    fmt: SourceFormat,
    args: dict[str, Any],
    num_classes: int,
    file_name: str,
    digest: str,
) -> ModelConfig:
    from ... import __version__

    data_changes = {**fmt.data_config, **(tag.data_config if tag else {})}
    provenance: dict[str, Any] = {
        "source": f"converted from the {fmt.name} checkpoint {file_name}",
        "conversion": {
            "source_format": fmt.name,
            "input_file": file_name,
            "input_sha256": digest,
            "nlzoo_version": __version__,
        },
    }
    if tag is not None:
        provenance.update(
            dataset=tag.dataset,
            license=tag.license,
            origin_url=tag.origin_url,
            metrics=dict(tag.metrics),
            verified=tag.verified,
        )
    labels = list(tag.label_names) if tag and tag.label_names and num_classes == tag.num_classes else None
    return ModelConfig(
        architecture=entry.name,
        task=entry.task,
        num_classes=num_classes,
        data_config=entry.data_config.replace(**data_changes),
        model_args=args,
        label_names=labels,
        pretrained_tag=tag.tag if tag else None,
        provenance=provenance,
    )
