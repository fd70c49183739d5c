"""The CPU synthetic detection recipe over seeds: COCO AP with and without the non-local block.

Each seed generates its own synthetic shapes-and-people images (``data_seed = seed``) and trains every model
with ``recipes/detection/maskrcnn_r18_fpn_nl_synthetic.yaml`` (through nlzoo's Lightning CLI, the model name
and seed swapped), from scratch with the same seed, then evaluates it once on the held-out val split: box and
mask AP (keypoint AP with ``--targets keypoints``), COCO's AP@[.5:.95] in percent. Prints every run, then per
model the mean and standard deviation of each AP, of its paired gap to the baseline and of the training time.

* default: the recipe's pair (``maskrcnn_r18_fpn_nl`` vs ``maskrcnn_r18_fpn``), masks;
* ``--targets keypoints``: ``keypointrcnn_r18_fpn_nl_head`` vs ``keypointrcnn_r18_fpn`` (box and keypoint AP).

The benchmark's size (``FULL``) is the recipe's own 300 steps; it differs only in its held-out set: 64 val
images instead of 16 (a less noisy AP; still few, so read the per-seed values). The 6 runs take about 45 minutes
on 2 CPU cores, two at a time on one thread each (one process per model, ``--models M --baseline M``; then
``--resume`` with both logs prints the table): a step of 4 images took about 2.7 CPU-seconds on the 2-core EPYC
build machine. Shorter runs measure nothing: at 90 steps (warm-up and milestones scaled alike) both models
scored 0.0 AP, while the recipe's schedule passes 10% box AP near step 115. ``--steps N`` overrides the length,
scaling warm-up and milestones.

    python benchmarks/detection_seeds.py [--seeds 0 1 2] [--targets masks|keypoints] [--models M ...]
                                         [--baseline M] [--steps N] [--out DIR] [--resume LOG ...] [--json]
                                         [--quick]

Every finished run is printed to stderr as one ``seed S: {json}`` line; ``--resume`` reads such lines from
earlier, interrupted or split invocations (same settings) and trains only the runs they lack.

``--quick`` trains 1 step on 2 images and evaluates on 1, on seed 0 unless ``--seeds`` says otherwise (checks
the script, measures nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import seeds as common

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "detection" / "maskrcnn_r18_fpn_nl_synthetic.yaml"
PAIRS = {  # (with blocks, baseline) per target type
    "masks": ("maskrcnn_r18_fpn_nl", "maskrcnn_r18_fpn"),
    "boxes": ("fasterrcnn_r18_fpn_nl", "fasterrcnn_r18_fpn"),
    "keypoints": ("keypointrcnn_r18_fpn_nl_head", "keypointrcnn_r18_fpn"),
}
METRICS = {"box AP": "val/bbox_map", "mask AP": "val/segm_map", "keypoint AP": "val/keypoint_AP"}
RECIPE_STEPS, RECIPE_WARMUP, RECIPE_MILESTONES = 300, 50, (200, 270)


@dataclass(frozen=True)
class Size:
    """What the benchmark changes in the recipe: images and steps (warm-up and milestones scale with steps)."""

    train_images: int
    val_images: int
    steps: int
    num_workers: int

    def overrides(self) -> list[str]:
        scale = self.steps / RECIPE_STEPS
        milestones = [max(1, round(m * scale)) for m in RECIPE_MILESTONES]
        return [
            "--data.init_args.num_train_images", str(self.train_images),
            "--data.init_args.num_val_images", str(self.val_images),
            "--data.init_args.num_workers", str(self.num_workers),
            "--trainer.max_steps", str(self.steps),
            "--model.init_args.warmup_steps", str(max(1, round(RECIPE_WARMUP * scale))),
            "--model.init_args.milestones", json.dumps(milestones),
        ]  # fmt: skip


FULL = Size(train_images=128, val_images=64, steps=RECIPE_STEPS, num_workers=2)
QUICK = Size(train_images=2, val_images=1, steps=1, num_workers=0)


@contextlib.contextmanager
def _argv(args: list[str]) -> Iterator[None]:
    """LightningCLI reads sys.argv when given no args; give it the benchmark's own."""
    saved = sys.argv
    sys.argv = ["nlzoo", *args]
    try:
        yield
    finally:
        sys.argv = saved


def train_and_evaluate(model: str, seed: int, size: Size, targets: str, out: Path) -> dict[str, Any]:
    """Build the recipe's trainer, task and data for ``model`` and ``seed``; train, then evaluate on val once."""
    from nlzoo.cli.demo import quiet_lightning
    from nlzoo.cli.lightning import build_cli
    from nlzoo.layers import nonlocal_blocks

    args = [
        "--config", str(RECIPE),
        "--seed_everything", str(seed),
        "--model.init_args.model", model,
        "--data.init_args.root", str(out / "data"),
        "--data.init_args.data_seed", str(seed),
        "--data.init_args.targets", targets,
        "--trainer.default_root_dir", str(out / "runs" / model),
        "--trainer.check_val_every_n_epoch", "1000000",  # no validation while training: the one at the end
        "--trainer.num_sanity_val_steps", "0",
        "--trainer.enable_checkpointing", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        *size.overrides(),
    ]  # fmt: skip
    with quiet_lightning(), _argv(args):
        cli = build_cli(args, run=False)
        task, data, trainer = cli.model, cli.datamodule, cli.trainer
        start = time.perf_counter()
        trainer.fit(task, datamodule=data)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        (metrics,) = trainer.validate(task, datamodule=data, verbose=False)
        eval_s = time.perf_counter() - start
    ap = {name: 100 * float(metrics[key]) for name, key in METRICS.items() if key in metrics}
    return {
        "ap": ap,
        "train_s": train_s,
        "eval_s": eval_s,
        "steps": trainer.global_step,
        "params": sum(p.numel() for p in task.model.parameters()),
        "nonlocal_blocks": sum(1 for _ in nonlocal_blocks(task.model)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_arguments(parser)
    parser.add_argument("--targets", choices=sorted(PAIRS), default="masks", help="what the models learn")
    parser.add_argument("--models", nargs="+", help="registry names to train (default: the targets' r18 pair)")
    parser.add_argument("--baseline", help="model the gaps are taken against (default: the pair's plain one)")
    parser.add_argument("--steps", type=int, help=f"override the training steps ({FULL.steps}; say so when reporting)")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be >= 1; got {args.steps}")
        size = dataclasses.replace(size, steps=args.steps)
    seeds = common.chosen_seeds(args)
    models = args.models or list(PAIRS[args.targets])
    baseline = args.baseline or PAIRS[args.targets][1]
    if baseline not in models:
        parser.error(f"--baseline {baseline} is not among --models {' '.join(models)}")

    with common.output_root(args.out) as root:
        runs = common.run_all(
            seeds,
            models,
            lambda seed, model: train_and_evaluate(model, seed, size, args.targets, root / f"seed{seed}"),
            resume=args.resume,
        )

    names = [name for name in METRICS if all(name in r["ap"] for r in runs)]
    ap = {(r["seed"], r["model"], name): r["ap"][name] for r in runs for name in names}
    summary = {}
    for model in models:
        mine = [r for r in runs if r["model"] == model]
        summary[model] = {
            "ap": {name: common.summary([r["ap"][name] for r in mine]) for name in names},
            "gap": {
                name: common.summary([r["ap"][name] - ap[r["seed"], baseline, name] for r in mine]) for name in names
            },
            "train_s": common.summary([r["train_s"] for r in mine]),
            "params": mine[0]["params"],
            "nonlocal_blocks": mine[0]["nonlocal_blocks"],
        }
    report = {
        "recipe": str(RECIPE.relative_to(RECIPE.parents[2])),
        "settings": {**dataclasses.asdict(size), "targets": args.targets},
        "environment": common.environment(),
        "baseline": baseline,
        "runs": runs,
        "summary": summary,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    env = report["environment"]
    print(
        f"{report['recipe']} over seeds {seeds}: {size.steps} steps on {size.train_images} images, AP (COCO "
        f"AP@[.5:.95], %) on {size.val_images} held-out images each ({env['cpu']}, {env['threads']} threads)"
    )
    header = ["model", "blocks", "params"]
    for name in names:
        header += [f"{name} (mean ± std)", "per seed", f"gap to {baseline}"]
    header += ["train s (mean ± std)", "train s per seed"]
    rows = []
    for model, s in summary.items():
        row = [f"`{model}`", str(s["nonlocal_blocks"]), f"{s['params'] / 1e6:.2f} M"]
        for name in names:
            mean, gap = s["ap"][name], s["gap"][name]
            row += [
                f"{mean['mean']:.1f} ± {mean['std']:.1f}",
                common.per_seed(runs, model, lambda r, name=name: r["ap"][name]),
                f"{gap['mean']:+.1f} ± {gap['std']:.1f}",
            ]
        row += [
            f"{s['train_s']['mean']:.0f} ± {s['train_s']['std']:.0f}",
            common.per_seed(runs, model, lambda r: r["train_s"], "{:.0f}"),
        ]
        rows.append(row)
    print(common.markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
