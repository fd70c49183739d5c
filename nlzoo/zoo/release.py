"""``nlzoo release ORG``: publish nlzoo's conversions of the published checkpoints on the Hugging Face Hub.

For each tag whose weights nlzoo converts from a third-party file (``origin_url`` + ``origin_format``):

1. download the publisher's file (:func:`~nlzoo.zoo.download.download_file`: resumable, refused unless its
   sha256 fits the prefix in its name and the tag's ``origin_sha256``);
2. convert it (:func:`~nlzoo.zoo.converters.convert_checkpoint`: strict keys, nothing from the file runs);
3. verify it: the folder loads strictly; the network the registry builds for the tag (what
   ``nlzoo.load("arch.tag")`` will build around the Hub file) takes the weights strictly and gives the same
   finite logits on a tiny but valid clip; where the format has a reference implementation (pytorchvideo's
   own network), that network on the downloaded file gives the same logits too;
4. write the Hub folder ``OUT/arch.tag`` atomically (config.json, model.safetensors, a model card naming the
   repo, the source URL and both sha256s);
5. push it as one commit to ``ORG/arch.tag`` (:func:`~nlzoo.zoo.push.push_to_hub`); and
6. record the commit and the weights' sha256 in ``published.json`` (:mod:`~nlzoo.zoo.records`) and regenerate
   checkpoints.md, where the tag now shows as "published".

One tag's failure is reported on its line and the others go on.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import ConfigError, ConversionError, HubAuthError, HubUnavailableError, NlzooError, UnknownNameError
from ..files import atomic_write_text
from .checkpoints import render_checkpoints
from .config import DataConfig, PretrainedTag
from .families.sources import HubWeights
from .folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, file_sha256, read_config, read_folder, write_folder_atomically
from .records import RECORD_PATH, ReleaseRecord, load_records, save_records
from .registry import ModelEntry, get_entry, list_models, publish_tag

CHECKPOINTS_MD = Path(__file__).parents[2] / "checkpoints.md"
TINY_SIDE = 64  # pixels: the smallest crop every video ResNet here runs at (res5 at 2x2)
PARITY_TOLERANCE = 1e-4  # |logit difference|, as tests/zoo/converters/test_pytorchvideo_parity.py


@dataclass(frozen=True)
class Candidate:
    """A tag ``name`` (``"arch.tag"``) whose weights are converted from a published checkpoint."""

    name: str
    entry: ModelEntry
    tag: PretrainedTag


@dataclass(frozen=True)
class Prepared:
    """A verified Hub folder, the sha256 of its weights and of the file they came from, what was checked."""

    folder: Path
    weights_sha256: str
    source_sha256: str
    checks: str


@dataclass(frozen=True)
class Outcome:
    """What happened to one tag: ``status`` is published, unchanged, dry-run or failed; ``line`` says it."""

    name: str
    status: str
    line: str
    record: ReleaseRecord | None = None


def release_candidates(patterns: Sequence[str] = ()) -> list[Candidate]:
    """The tags converted from published checkpoints, matching any fnmatch ``pattern`` on ``arch.tag`` (all
    when none is given), in registry order.

    Raises:
        UnknownNameError: a pattern matches none of them (the message names close matches).
    """
    found = [
        Candidate(f"{entry.name}.{tag.tag}", entry, tag)
        for entry in map(get_entry, list_models())
        for tag in entry.tags.values()
        if tag.origin_url and tag.origin_format
    ]
    names = [c.name for c in found]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise UnknownNameError(_no_match(pattern, names))
    return [c for c in found if not patterns or any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def _no_match(pattern: str, names: list[str]) -> str:
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    arch, _, tag = pattern.partition(".")
    try:
        other = get_entry(arch).tags.get(tag)
    except UnknownNameError:
        other = None
    source = (other.source.describe() if other.source else other.status) if other else ""
    why = f" {pattern} is not converted from a published checkpoint ({source})." if other else ""
    return (
        f"no convertible tag matches {pattern!r}.{why}{hint} Releasable tags are the {len(names)} 'ready to convert' "
        "and 'published' rows of checkpoints.md (patterns match 'arch.tag', e.g. 'i3d_r50*.kinetics400*')."
    )


def release(
    org: str,
    *,
    patterns: Sequence[str] = (),
    out_dir: str | os.PathLike[str],
    dry_run: bool = False,
    token: str | None = None,
    private: bool = False,
    record_path: str | os.PathLike[str] = RECORD_PATH,
    checkpoints_path: str | os.PathLike[str] = CHECKPOINTS_MD,
    report: Callable[[Outcome], None] = lambda outcome: None,
    raise_unexpected: bool = False,
) -> list[Outcome]:
    """Download, convert, verify, write and (unless ``dry_run``) push every matching tag to ``org``.

    Args:
        org: the Hub user or organisation; tag ``arch.tag`` goes to repo ``org/arch.tag``.
        patterns: fnmatch patterns on ``arch.tag``; none: every convertible tag.
        out_dir: where the Hub folders are written (``out_dir/arch.tag``), kept after the run.
        dry_run: stop after writing the folders: nothing is pushed or recorded.
        token: Hub token; default ``HF_TOKEN`` or the saved login. Checked before anything is downloaded.
        private: create new repos as private.
        record_path: the ``published.json`` to update.
        checkpoints_path: the checkpoints.md to regenerate after each release.
        report: called with each tag's :class:`Outcome` as soon as it is known.
        raise_unexpected: re-raise an error that is not a user-causable one (a bug) instead of reporting it.

    Raises:
        ConfigError: a bad ``org``, or record / checkpoints files that cannot be updated.
        UnknownNameError: a pattern that matches no convertible tag.
        HubAuthError / HubUnavailableError / ConfigError: no usable token, no Hub, or an ``org`` the token
            cannot write to (checked before any download; not for a dry run).
    """
    from .push import _hub_token

    if not org or "/" in org or org.strip() != org:
        raise ConfigError(f"ORG must be a Hub user or organisation name (repos become ORG/arch.tag); got {org!r}")
    candidates = release_candidates(patterns)
    records: dict[str, ReleaseRecord] = {}
    if not dry_run:
        token = _hub_token(token)
        check_write_access(org, token)
        records = load_records(record_path)
        if not Path(checkpoints_path).is_file():
            raise ConfigError(
                f"{checkpoints_path} does not exist: run `nlzoo release` from a source checkout (pip install -e .), "
                "whose published.json and checkpoints.md it updates, or pass --checkpoints-md"
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for candidate in candidates:
        repo_id = f"{org}/{candidate.name}"
        try:
            outcome = _release_one(candidate, repo_id, out, dry_run=dry_run, token=token, private=private)
            if outcome.record is not None:
                records[candidate.name] = outcome.record
                _record(candidate.name, outcome.record, records, Path(record_path), Path(checkpoints_path))
        except Exception as err:  # one tag's failure must not stop the others
            if raise_unexpected and not isinstance(err, NlzooError):
                raise
            kind = "" if isinstance(err, NlzooError) else f"unexpected {type(err).__name__}: "
            outcome = Outcome(candidate.name, "failed", f"{candidate.name}: FAILED: {kind}{_one_line(err)}")
        outcomes.append(outcome)
        report(outcome)
    return outcomes


def check_write_access(org: str, token: str) -> str:
    """The name of the user ``token`` belongs to, asked of the Hub before anything is downloaded, so that an
    invalid or read-only token, or an ``org`` that user cannot write to, is one line now rather than a failure
    after the first conversion.

    Raises:
        HubAuthError: the Hub refuses the token, or it is read-only.
        HubUnavailableError: the Hub cannot be reached (or offline mode is on).
        ConfigError: the user is not ``org`` nor a member of it.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .download import network_errors
    from .push import LOGIN_HINT

    try:
        me = HfApi(token=token).whoami()
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        if status in (401, 403):
            raise HubAuthError(f"the Hub refused the token ({status}); {LOGIN_HINT}") from None
        raise HubUnavailableError(f"the Hub could not say whom the token belongs to ({_one_line(err)})") from err
    except (OSError, *network_errors()) as err:
        raise HubUnavailableError(
            f"cannot reach the Hugging Face Hub ({_one_line(err)}); releasing needs network access "
            "(--dry-run downloads, converts and verifies without pushing)"
        ) from err
    user = str(me.get("name"))
    orgs = sorted(str(o.get("name")) for o in me.get("orgs") or [])
    if org not in (user, *orgs):
        raise ConfigError(
            f"the token belongs to {user!r}, who cannot create repos in {org!r}; use ORG {user!r}"
            + (f" or one of their organisations ({', '.join(orgs)})" if orgs else "")
        )
    if ((me.get("auth") or {}).get("accessToken") or {}).get("role") == "read":
        raise HubAuthError(f"the token of {user!r} is read-only; {LOGIN_HINT}")
    return user


def _release_one(
    candidate: Candidate, repo_id: str, out: Path, *, dry_run: bool, token: str | None, private: bool
) -> Outcome:
    from .push import push_to_hub

    name = candidate.name
    prepared = prepare(candidate, repo_id, out)
    digest = f"model.safetensors sha256 {prepared.weights_sha256}"
    current = candidate.tag.source if isinstance(candidate.tag.source, HubWeights) else None
    if current is not None and (current.repo_id, current.sha256) == (repo_id, prepared.weights_sha256):
        line = f"{name}: unchanged: already published as hf-hub:{repo_id}@{current.revision}"
        return Outcome(name, "unchanged", line)
    if dry_run:
        visibility = "private" if private else "public"
        return Outcome(
            name,
            "dry-run",
            f"{name}: dry run: would push {prepared.folder} to {repo_id} ({visibility}); {digest}; "
            f"verified: {prepared.checks}",
        )
    info = push_to_hub(
        prepared.folder,
        repo_id,
        private=private,
        token=token,
        commit_message=f"nlzoo release {name}: converted from {candidate.tag.origin_url}",
    )
    record = ReleaseRecord(repo_id, str(info.oid), prepared.weights_sha256, str(candidate.tag.origin_url),
                           prepared.source_sha256)  # fmt: skip
    return Outcome(name, "published", f"{name}: published hf-hub:{repo_id}@{info.oid}; {digest}", record)


def _record(
    name: str, record: ReleaseRecord, records: dict[str, ReleaseRecord], record_path: Path, checkpoints: Path
) -> None:
    """Save the records, make the registry's tag load from the release, and regenerate checkpoints.md."""
    save_records(records, record_path)
    publish_tag(name, record)
    atomic_write_text(checkpoints, render_checkpoints())


def prepare(candidate: Candidate, repo_id: str, out: Path) -> Prepared:
    """Download, convert and verify ``candidate``'s checkpoint; write its Hub folder ``out/arch.tag``."""
    from .converters import convert_checkpoint
    from .download import download_file

    tag = candidate.tag
    url, fmt = str(tag.origin_url), str(tag.origin_format)
    work = Path(tempfile.mkdtemp(prefix=f".{candidate.name}.", suffix=".work", dir=out))
    try:
        download = work / os.path.basename(urlparse(url).path)
        source_sha256 = download_file(url, download, expected_sha256=tag.origin_sha256)
        converted = convert_checkpoint(fmt, candidate.name, download, work / "converted")
        checks = verify(candidate, converted, download)
        folder = write_hub_folder(converted, out / candidate.name, repo_id=repo_id, checks=checks)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the download is not kept
    return Prepared(folder, file_sha256(folder / WEIGHTS_NAME), source_sha256, checks)


def verify(candidate: Candidate, folder: Path, download: Path) -> str:
    """Check a converted folder as the release will serve it; what was checked, in words.

    Raises:
        ConversionError: wrong logits shape, non-finite logits, or logits that differ from the registry's
            build of the tag or from the reference network.
        CheckpointMismatchError: the registry's build of the tag does not take the weights key for key.
    """
    from .factory import load_folder
    from .weights import load_weights

    entry, tag, name = candidate.entry, candidate.tag, candidate.name
    cfg, tensors = read_folder(folder)
    converted = load_folder(folder).eval()  # strict keys, from the folder's own config
    registered = entry.builder(**tag.model_args, num_classes=tag.num_classes)
    load_weights(registered, tensors, source=f"{name} (converted)")  # strict: what loading the release does
    clip = tiny_input(cfg.data_config)
    with torch.no_grad():
        (logits, compared), (_, again) = probe(converted, clip), probe(registered.eval(), clip)
    if logits.shape[-1] != tag.num_classes or not torch.isfinite(compared).all():
        raise ConversionError(f"{name}: the converted network gives {tuple(logits.shape)} logits, not all finite")
    gap = float((compared - again).abs().max())
    if gap > PARITY_TOLERANCE:
        raise ConversionError(
            f"{name}: the tag's registry settings (model_args {dict(tag.model_args)}) build a network whose logits "
            f"differ from the converted folder's (model_args {cfg.model_args}) by {gap:.2g}; fix the tag"
        )
    shape = "x".join(map(str, clip.shape))
    what = "clip" if clip.dim() == 5 else "image"
    checks = [
        f"strict keys; a {shape} {what} gives {tag.num_classes} finite logits, the same from the registry's build"
    ]
    reference = REFERENCES.get(str(tag.origin_format))
    if reference is not None:
        want = reference(entry.name, download, clip)
        gap = float((logits - want).abs().max()) if want.shape == logits.shape else float("inf")
        if not gap <= PARITY_TOLERANCE:
            raise ConversionError(
                f"{name}: {tag.origin_format}'s own network on the downloaded file gives other logits "
                f"(max difference {gap:.2g} > {PARITY_TOLERANCE:g}); the conversion is wrong for this file"
            )
        checks.append(f"logits match {tag.origin_format}'s own network on the downloaded file (max diff {gap:.1e})")
    return "; ".join(checks)


def tiny_input(data: DataConfig) -> torch.Tensor:
    """A fixed random (1, 3, T, 64, 64) clip (T = the tag's frames), or a (1, 3, 64, 64) image: valid for
    every stride, temporal group and non-local block of the tag, yet cheap on a CPU."""
    side = min(TINY_SIDE, *data.crop_size)
    shape = (1, 3, data.num_frames, side, side) if data.num_frames else (1, 3, side, side)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def probe(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(class scores, everything compared)`` of ``model`` on ``x``: a classifier's logits, twice; for a
    detector (whose forward resizes, proposes and filters), its box classifier's scores on fixed RoI features,
    and those scores together with its FPN features, which every backbone and non-local setting shapes."""
    heads = getattr(model, "roi_heads", None)
    if heads is None:
        logits = model(x)
        return logits, logits
    rois = torch.randn(2, model.backbone.out_channels, 7, 7, generator=torch.Generator().manual_seed(1))
    scores, _ = heads.box_predictor(heads.box_head(rois.to(x.device)))
    features = [f.flatten() for f in model.forward_features(x).values()]
    return scores, torch.cat([*features, scores.flatten()])


def pytorchvideo_logits(arch: str, checkpoint: Path, clip: torch.Tensor) -> torch.Tensor:
    """pytorchvideo's own hub network ``arch`` with the downloaded file's weights, on ``clip``.

    Its head averages a fixed window; it is sized to ``clip`` (the global pool, as at 8x224x224).
    """
    try:
        from pytorchvideo.models import hub
    except ImportError as err:
        raise ConversionError(
            "checking logit parity with pytorchvideo's own network needs pytorchvideo: pip install pytorchvideo==0.1.5"
        ) from err
    builder = getattr(hub, arch, None)
    if builder is None:
        raise ConversionError(f"pytorchvideo's hub has no {arch} to check the conversion against")
    _, _, frames, height, width = clip.shape
    net = builder(pretrained=False, head_pool_kernel_size=(frames // 2, height // 32, width // 32))
    net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["model_state"])  # strict
    with torch.no_grad():
        return net.eval()(clip)


# Source format -> its reference network on the downloaded file: (arch, file, clip) -> logits.
REFERENCES: dict[str, Callable[[str, Path, torch.Tensor], torch.Tensor]] = {"pytorchvideo": pytorchvideo_logits}


def write_hub_folder(converted: Path, directory: Path, *, repo_id: str, checks: str) -> Path:
    """``directory`` as the Hub repo will hold it (atomic): the converted weights, its config.json with what the
    release checked added to the provenance, and the model card for ``repo_id``."""
    from .card import render_model_card

    payload = json.loads((converted / CONFIG_NAME).read_text())
    payload["provenance"] = {**payload["provenance"], "release_check": checks}
    cfg = dataclasses.replace(read_config(converted), provenance=payload["provenance"])
    weights_sha256 = payload["weights_sha256"]

    def write(tmp: Path) -> None:
        shutil.copyfile(converted / WEIGHTS_NAME, tmp / WEIGHTS_NAME)
        (tmp / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        (tmp / CARD_NAME).write_text(render_model_card(cfg, repo_id=repo_id, weights_sha256=weights_sha256))

    folder = write_folder_atomically(directory, write)
    read_folder(folder)  # the copy is the file config.json records
    return folder


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
