"""``nlzoo models``: the zoo as a table (name, task, parameters, GFLOPs at the default input, tags)."""

from __future__ import annotations

import argparse
import fnmatch

from ..errors import ConfigError

HELP = "list the zoo's models with parameters, GFLOPs and pretrained tags"

EPILOG = """examples:
  nlzoo models                 every model
  nlzoo models i3d_r50         names containing i3d_r50 (a pattern without * or ? matches anywhere)
  nlzoo models "c2d_*_nl" --pretrained
Parameters and FLOPs are counted on the meta device (no weights are allocated or downloaded), once per
nlzoo and torch version: later listings read them from ~/.cache/nlzoo/complexity.json.
GFLOPs: one forward pass on one input of the shown size; a multiply-add counts 2 (papers often quote
multiply-adds, half of this)."""

# How each tag status shows: available weights load as they are; convertible ones are converted on first load.
STATUS_MARK = {"available": ("", "green"), "convertible": (" (convert)", "yellow"), "unavailable": (" (n/a)", "dim")}


# nlzoo.zoo.config.TASKS, spelled out so that --help needs no torch (a test keeps them equal).
TASKS = ("video-classification", "image-classification", "pose-estimation", "detection", "keypoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "patterns", nargs="*", metavar="PATTERN", help="fnmatch patterns (or substrings) of model names"
    )
    parser.add_argument(
        "--pretrained", action="store_true", help="only models with weights available now (status 'available')"
    )
    parser.add_argument("--task", choices=TASKS, help="only models of this task")


def matching_models(patterns: list[str], *, pretrained: bool, task: str | None) -> list[str]:
    """Registered architecture names matching any pattern; a pattern without wildcards matches as a substring."""
    from ..zoo import list_models

    globs = [p if any(c in p for c in "*?[") else f"*{p}*" for p in patterns] or ["*"]
    names = list_models(task=task)
    if pretrained:
        with_weights = {n.partition(".")[0] for n in list_models(pretrained=True, task=task)}
        names = [n for n in names if n in with_weights]
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table
    from rich.text import Text

    from ..zoo import get_entry
    from ..zoo.complexity import zoo_complexities
    from .tables import print_table

    names = matching_models(args.patterns, pretrained=args.pretrained, task=args.task)
    if not names:
        wanted = " ".join(args.patterns) or "*"
        filters = " with available weights" if args.pretrained else ""
        filters += f" for task {args.task}" if args.task else ""
        raise ConfigError(f"no model matches {wanted!r}{filters}; run `nlzoo models` to see them all")

    table = Table(title=f"nlzoo models ({len(names)})", title_justify="left")
    # Narrow terminals wrap names and tags rather than cut them or squeeze a column to nothing.
    table.add_column("name", overflow="fold", min_width=12)
    table.add_column("task", overflow="fold", min_width=5)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("GFLOPs", justify="right", no_wrap=True)
    table.add_column("NL", justify="right", no_wrap=True)
    table.add_column("input", overflow="fold", min_width=5)
    table.add_column("tags", overflow="fold", min_width=12)
    entries = {name: get_entry(name) for name in names}
    # A builder of several architectures (any timm model) has no one size.
    sized = [name for name, entry in entries.items() if entry.classifier is not None]
    with Progress(console=Console(stderr=True), transient=True) as progress:
        counted = progress.track(zoo_complexities(sized), total=len(sized), description="counting parameters and FLOPs")
        sizes = dict(counted)
    for name, entry in entries.items():
        tags = Text("\n").join(
            Text(t.tag + STATUS_MARK[t.status][0], style=STATUS_MARK[t.status][1]) for t in entry.tags.values()
        )
        if name not in sizes:
            table.add_row(name, entry.task.split("-")[0], "-", "-", "-", "any", "-")
            continue
        size = sizes[name]
        table.add_row(
            name,
            entry.task.split("-")[0],
            f"{size.params / 1e6:.1f}M",
            f"{size.gflops:.1f}",
            str(size.nonlocal_blocks),
            "x".join(map(str, size.input_shape[1:])),
            tags if entry.tags else "-",
        )
    console = Console()
    print_table(console, table)
    console.print(
        "GFLOPs: one forward pass at the input shown (T x H x W or H x W); a multiply-add counts 2. "
        "Tags: plain = weights load now (nlzoo.load('NAME.TAG')); (convert) = published elsewhere, "
        "downloaded and converted on first load (or by `nlzoo convert`); (n/a) = not published.",
        highlight=False,
    )
    return 0
