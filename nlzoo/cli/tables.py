"""What the commands print: tables whole (never cropped by Rich), and the classifying commands' top-k as a
table or, with ``--json``, one JSON object."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from rich.console import Console
    from rich.table import Table


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` whole: a pipe or a file has no width to fit, so the table keeps its natural one; a
    terminal narrower than the table's minimum gets longer lines (which it wraps) rather than Rich cropping
    the last columns away."""
    widths = console.measure(table, options=console.options.update(max_width=10_000))
    console.width = max(console.width, widths.minimum if console.is_terminal else widths.maximum)
    console.print(table)


def print_top_k(console: Console, err: Console, scores: torch.Tensor, label_names: list[str] | None, k: int) -> None:
    """Rank, class index, label and score of the ``k`` best classes (ImageNet's WordNet ids shown as words);
    without label names, indices stand in (and ``err`` says so)."""
    from rich.table import Table

    from ..inference.labels import top_classes

    table = Table()
    table.add_column("#", justify="right")
    table.add_column("class", justify="right")
    table.add_column("label")
    table.add_column("score", justify="right")
    for row in top_classes(scores, label_names, k):
        table.add_row(str(row["rank"]), str(row["class"]), row["label"], f"{row['score']:.4f}")
    print_table(console, table)
    if not label_names:
        err.print("the model has no label names (config.json label_names); showing class indices")


def print_top_k_json(scores: torch.Tensor, label_names: list[str] | None, k: int, **about: Any) -> None:
    """One JSON object on stdout: ``about`` (input, model, ...) and ``top_k``, the rows of the table."""
    from ..inference.labels import top_classes

    print(json.dumps({**about, "top_k": top_classes(scores, label_names, k)}))
