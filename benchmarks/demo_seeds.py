"""The demo's comparison over seeds: models trained and tested on the same synthetic videos.

Each seed generates its own synthetic "same colour?" videos (``data_seed = seed``) and trains every model from
the same seed with the demo's settings (``nlzoo.cli.demo.DemoSettings``), then tests them on held-out videos.
Prints every run, then per model the mean and standard deviation of the test top-1, of its gap to the
baseline and of its training time. This is where the README's demo numbers come from:

* default: the demo's pair (``c2d_r18_nl`` vs ``c2d_r18``);
* ``--models c2d_r18_nl c2d_r18_gc ... --baseline c2d_r18``: the non-local family on one task;
* ``--precision bf16-mixed``: the same runs under Lightning's bf16 autocast (compare with a fp32 run).

    python benchmarks/demo_seeds.py [--seeds 0 1 2] [--models M ...] [--baseline M] [--precision P]
                                    [--epochs N] [--out DIR] [--resume LOG ...] [--json] [--quick]

Every finished run is printed to stderr as one ``seed S: {json}`` line; ``--resume`` reads such lines from
earlier, interrupted or split invocations (same settings) and trains only the runs they lack.

``--quick`` runs the demo's seconds-long smoke settings, on seed 0 unless ``--seeds`` says otherwise (checks the
script, measures nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import seeds as common
import torch

from nlzoo.cli.demo import QUICK, DemoSettings, train_and_test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_arguments(parser)
    parser.add_argument("--models", nargs="+", help="registry names to train (default: the demo's pair)")
    parser.add_argument("--baseline", help="model the gaps are taken against (default: the demo's baseline)")
    parser.add_argument("--precision", help="Lightning precision, e.g. bf16-mixed (default: the demo's, 32-true)")
    parser.add_argument("--epochs", type=int, help="override the demo's epochs (say so when reporting)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DemoSettings()
    if args.epochs is not None:
        settings = dataclasses.replace(settings, epochs=args.epochs)
    if args.precision is not None:
        settings = dataclasses.replace(settings, precision=args.precision)
    seeds = common.chosen_seeds(args)
    models = args.models or [settings.nonlocal_model, settings.baseline_model]
    baseline = args.baseline or settings.baseline_model
    if baseline not in models:
        parser.error(f"--baseline {baseline} is not among --models {' '.join(models)}")

    from nlzoo.data import ensure_synthetic_videos

    def prepare(root: Path, seed: int) -> None:
        out = root / f"seed{seed}"
        ensure_synthetic_videos(out / "data", settings.data_module(out / "data", seed=seed).spec)

    def train(root: Path, seed: int, model: str) -> dict[str, Any]:
        arm = train_and_test(model, settings, root / f"seed{seed}", seed=seed, data_seed=seed, progress=False)
        return {
            "top1": arm.test_top1,
            "train_s": arm.train_seconds,
            "params": arm.params,
            "nonlocal_blocks": arm.nonlocal_blocks,
        }

    with common.output_root(args.out) as root:
        runs = common.run_all(
            seeds,
            models,
            lambda seed, model: train(root, seed, model),
            resume=args.resume,
            prepare=lambda seed: prepare(root, seed),
        )

    top1 = {(r["seed"], r["model"]): r["top1"] for r in runs}
    summary = {}
    for model in models:
        mine = [r for r in runs if r["model"] == model]
        summary[model] = {
            "top1": common.summary([r["top1"] for r in mine]),
            "gap": common.summary([r["top1"] - top1[r["seed"], baseline] for r in mine]),
            "train_s": common.summary([r["train_s"] for r in mine]),
            "params": mine[0]["params"],
            "nonlocal_blocks": mine[0]["nonlocal_blocks"],
        }
    report = {
        "settings": dataclasses.asdict(settings),
        "environment": common.environment(),
        "baseline": baseline,
        "runs": runs,
        "summary": summary,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"demo comparison over seeds {seeds} ({settings.epochs} epochs, {settings.num_test} test videos each, "
        f"precision {settings.precision}, {report['environment']['cpu']}, {torch.get_num_threads()} threads)"
    )
    header = ["model", "blocks", "params", "test top-1 (mean ± std)", "per seed", f"gap to {baseline}", "train s"]
    rows = [
        [
            f"`{model}`",
            str(s["nonlocal_blocks"]),
            f"{s['params'] / 1e6:.2f} M",
            f"{100 * s['top1']['mean']:.1f} ± {100 * s['top1']['std']:.1f}%",
            " / ".join(f"{100 * top1[seed, model]:.1f}" for seed in seeds),
            f"{100 * s['gap']['mean']:+.1f} ± {100 * s['gap']['std']:.1f}",
            f"{s['train_s']['mean']:.0f}",
        ]
        for model, s in summary.items()
    ]
    print(common.markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
