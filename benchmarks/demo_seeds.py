"""The demo's comparison over seeds: non-local model vs the same model without its blocks.

Each seed generates its own synthetic "same colour?" videos (``data_seed = seed``) and trains both models
from the same initialisation seed with the demo's settings (``nlzoo.cli.demo.DemoSettings``), then tests
them on held-out videos. Prints every run, then the mean and standard deviation of both accuracies and of
their gap. This is where the README's demo numbers come from.

    python benchmarks/demo_seeds.py [--seeds 0 1 2] [--epochs N] [--out DIR] [--json] [--quick]

``--quick`` runs the demo's seconds-long smoke settings on one seed (checks the script, measures nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nlzoo.cli.demo import QUICK, DemoSettings, run_comparison


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the demo's epochs (say so when reporting)")
    parser.add_argument("--out", type=Path, help="keep data, logs and models here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--quick", action="store_true", help="smoke settings, first seed only")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DemoSettings()
    if args.epochs is not None:
        settings = dataclasses.replace(settings, epochs=args.epochs)
    seeds = args.seeds[:1] if args.quick else args.seeds

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = args.out or Path(scratch)
        for seed in seeds:
            start = time.perf_counter()
            nl, base = run_comparison(settings, root / f"seed{seed}", seed=seed, data_seed=seed, progress=False)
            runs.append(
                {
                    "seed": seed,
                    nl.model: nl.test_top1,
                    base.model: base.test_top1,
                    "gap": nl.test_top1 - base.test_top1,
                    f"{nl.model}_train_s": nl.train_seconds,
                    f"{base.model}_train_s": base.train_seconds,
                    "wall_s": time.perf_counter() - start,
                }
            )
            print(f"seed {seed}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)

    nl_name, base_name = settings.nonlocal_model, settings.baseline_model
    report = {
        "settings": dataclasses.asdict(settings),
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads()},
        "runs": runs,
        "summary": {key: _summary([r[key] for r in runs]) for key in (nl_name, base_name, "gap")},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    s = report["summary"]
    print(f"demo comparison over seeds {seeds} ({settings.epochs} epochs, {settings.num_test} test videos each)")
    for r in runs:
        print(
            f"  seed {r['seed']}: {nl_name} {100 * r[nl_name]:.1f}%  {base_name} {100 * r[base_name]:.1f}%  "
            f"gap {100 * r['gap']:+.1f}  (train {r[f'{nl_name}_train_s']:.0f} s / {r[f'{base_name}_train_s']:.0f} s)"
        )
    for key in (nl_name, base_name, "gap"):
        print(f"  {key:<12} mean {100 * s[key]['mean']:6.1f}  std {100 * s[key]['std']:5.1f}  (points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
