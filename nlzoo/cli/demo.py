"""``nlzoo demo``: the embedded demo. Non-local blocks see what local convolutions cannot; no downloads.

1. Writes the synthetic "same colour?" videos as real MP4 files (:mod:`nlzoo.data.synthetic`): two coloured
   squares, far apart in space and in time, and the label says whether their colours match.
2. Trains the same small network twice, with non-local blocks (``c2d_r18_nl``) and without (``c2d_r18``),
   with the same data, schedule and seed, and tests both on held-out videos (multi-view, video-level top-1).
   A C2D network only mixes frames in its final average pool, so it cannot relate the two squares (see the
   generator's docstring: about 58% at best); a non-local block relates them in one step.
3. Draws the attention of the trained model's first non-local block on a test video (PNG + GIF).

Everything goes under ``--out``: ``data/`` (videos and list files), ``runs/<model>/`` (Lightning logs and
the run's settings), ``models/<model>/`` (model folders for ``nlzoo.load``, ``predict-video``, ``explain``)
and ``attention/``. :func:`run_comparison` is what ``benchmarks/demo_seeds.py`` repeats over seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # the CLI imports every command for --help; Lightning loads only when the demo runs
    from ..data import SyntheticVideoDataModule
    from ..tasks import VideoClassifier
    from ..tasks.optim import OptimizerName

HELP = "the embedded demo: synthetic videos, a small model with vs without non-local blocks, attention maps"

EPILOG = """Runs on CPU in minutes (GPU if present) and downloads nothing. --quick runs a seconds-long smoke
version (tiny data, one epoch: its accuracies mean nothing). The comparison over several seeds is
benchmarks/demo_seeds.py."""


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo's two runs share: data, clips, model pair and schedule.

    ``recipes/video/synthetic_c2d_r18_nl.yaml`` is the non-local run as a recipe (a test keeps them equal).
    """

    nonlocal_model: str = "c2d_r18_nl"
    baseline_model: str = "c2d_r18"
    # The videos (nlzoo.data.synthetic.SyntheticVideoSpec): small and uncluttered, so the relation is what
    # is hard, not seeing the squares.
    num_train: int = 1024
    num_val: int = 64
    num_test: int = 200
    video_frames: int = 16
    video_size: int = 32
    num_colours: int = 6
    object_size: int = 6
    margin: int = 3
    distractors: int = 0
    noise: float = 4.0
    # Clips: 4 frames every 4th (A in the first pair, B in the second), the whole 32 x 32 frame.
    num_frames: int = 4
    sampling_rate: int = 4
    test_views: tuple[int, int] = (2, 1)
    # Schedule: AdamW with a one-epoch warm-up and cosine decay (SGD at lr 0.05 was unstable on this problem).
    epochs: int = 20
    batch_size: int = 16
    optimizer: OptimizerName = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    # Lightning's precision: fp32 by default; "bf16-mixed" is measured against it by benchmarks/demo_seeds.py.
    precision: str = "32-true"
    num_workers: int | None = None  # loader processes (None: nlzoo.data's default for the machine)

    def data_module(self, root: Path, *, seed: int) -> SyntheticVideoDataModule:
        """The data module over ``root`` (its ``prepare_data`` writes the videos there when missing).

        Args:
            root: the videos' folder.
            seed: seed of the generated videos and of the training data order.
        """
        from ..data import SyntheticVideoDataModule

        size = self.video_size
        return SyntheticVideoDataModule(
            str(root),
            num_train=self.num_train,
            num_val=self.num_val,
            num_test=self.num_test,
            video_frames=self.video_frames,
            video_size=(size, size),
            num_colours=self.num_colours,
            object_size=self.object_size,
            margin=self.margin,
            distractors=self.distractors,
            noise=self.noise,
            data_seed=seed,
            data_config={
                "num_frames": self.num_frames,
                "sampling_rate": self.sampling_rate,
                "crop_size": [size, size],
                "train_scale": [size, size],
                "test_scale": size,
                "test_clips": self.test_views[0],
                "test_crops": self.test_views[1],
            },
            batch_size=self.batch_size,
            eval_batch_size=4,
            val_views=(1, 1),
            num_workers=self.num_workers,
            seed=seed,
        )

    def task(self, model: str) -> VideoClassifier:
        """The LightningModule training ``model`` (a registry name) with the demo's schedule."""
        from ..data.synthetic_common import LABEL_NAMES
        from ..tasks import VideoClassifier

        return VideoClassifier(
            model,
            pretrained=False,  # the demo trains from scratch on its synthetic data
            num_classes=len(LABEL_NAMES),
            label_names=list(LABEL_NAMES),
            optimizer=self.optimizer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            schedule="cosine",
            warmup_epochs=self.warmup_epochs,
        )


QUICK = DemoSettings(num_train=8, num_val=0, num_test=4, test_views=(1, 1), epochs=1, batch_size=4, num_workers=0)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's start-up chatter (accelerator lines, tips) and known-harmless warnings; keep errors."""
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message in (".*isinstance\\(treespec, LeafSpec\\).*", ".*Total length of .* across ranks is zero.*"):
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@dataclass(frozen=True)
class ArmResult:
    """One trained model of the comparison."""

    model: str
    test_top1: float
    params: int
    nonlocal_blocks: int
    train_seconds: float
    run_dir: Path
    model_dir: Path


def train_and_test(
    model: str, settings: DemoSettings, out: Path, *, seed: int, data_seed: int, progress: bool = True
) -> ArmResult:
    """Train ``model`` on the demo data under ``out/data`` and test it; save its folder and run settings.

    Args:
        model: registry name.
        settings: the shared settings.
        out: the demo's output folder.
        seed: training seed (initialisation, data order, augmentation, dropout).
        data_seed: seed of the generated videos.
        progress: show Lightning's progress bar.

    Returns:
        The video-level test top-1 and where the run went.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import RichProgressBar
    from pytorch_lightning.loggers import CSVLogger

    from ..layers import nonlocal_blocks
    from ..zoo import save_pretrained

    pl.seed_everything(seed, verbose=False)
    data = settings.data_module(out / "data", seed=data_seed)
    task = settings.task(model)
    logger = CSVLogger(out / "runs", name=model, version=f"seed{seed}")
    with quiet_lightning():
        trainer = pl.Trainer(
            max_epochs=settings.epochs,
            precision=settings.precision,
            accelerator="auto",
            devices=1,
            logger=logger,
            callbacks=[RichProgressBar()] if progress else [],
            enable_progress_bar=progress,
            enable_checkpointing=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=min(10, max(1, settings.num_train // settings.batch_size)),
        )
        start = time.perf_counter()
        trainer.fit(task, datamodule=data)
        seconds = time.perf_counter() - start
        metrics = trainer.test(task, datamodule=data, verbose=False)[0]
    run_dir = Path(logger.log_dir)
    (run_dir / "demo_settings.json").write_text(
        json.dumps({**dataclasses.asdict(settings), "model": model, "seed": seed, "data_seed": data_seed}, indent=2)
    )
    # The folder must describe the clips the model was trained and tested on, not the architecture's defaults.
    task.model.nlzoo_config.data_config = data.resolve_data_config()
    model_dir = save_pretrained(task.model, out / "models" / model)
    return ArmResult(
        model=model,
        test_top1=float(metrics["test/top1"]),
        params=sum(p.numel() for p in task.model.parameters()),
        nonlocal_blocks=sum(1 for _ in nonlocal_blocks(task.model)),
        train_seconds=seconds,
        run_dir=run_dir,
        model_dir=model_dir,
    )


def run_comparison(
    settings: DemoSettings, out: Path, *, seed: int = 0, data_seed: int = 0, progress: bool = True
) -> tuple[ArmResult, ArmResult]:
    """Generate the data (if missing) and train + test the non-local model and its baseline.

    Returns:
        (non-local result, baseline result).
    """
    from ..data import ensure_synthetic_videos

    ensure_synthetic_videos(out / "data", settings.data_module(out / "data", seed=data_seed).spec)
    nonlocal_result = train_and_test(
        settings.nonlocal_model, settings, out, seed=seed, data_seed=data_seed, progress=progress
    )
    baseline_result = train_and_test(
        settings.baseline_model, settings, out, seed=seed, data_seed=data_seed, progress=progress
    )
    return nonlocal_result, baseline_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the generated videos (default 0)")
    parser.add_argument("--epochs", type=int, help="training epochs per model (default: the demo's)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (accuracies meaningless)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..data import ensure_synthetic_videos
    from ..inference.attention import write_attention_maps
    from ..inference.inputs import load_for_inference

    settings = QUICK if args.quick else DemoSettings()
    if args.epochs is not None:
        if args.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1; got {args.epochs}")
        settings = dataclasses.replace(settings, epochs=args.epochs)
    out: Path = args.out
    console = Console()
    spec = settings.data_module(out / "data", seed=args.data_seed).spec
    with console.status(f"writing {spec.num_train + spec.num_val + spec.num_test} synthetic videos to {out / 'data'}"):
        ensure_synthetic_videos(out / "data", spec)
    console.print(
        f"[bold]Same colour?[/] {spec.num_train} training videos of {spec.num_frames} frames at "
        f"{spec.size[0]}x{spec.size[1]}: two squares far apart in space and time; the label says whether "
        f"they share a colour ({spec.num_colours} colours). Training {settings.nonlocal_model} and "
        f"{settings.baseline_model} for {settings.epochs} epochs each."
    )
    results = run_comparison(settings, out, seed=args.seed, data_seed=args.data_seed)

    table = Table(title="Test accuracy (video level)", title_justify="left")
    for column, justify in (("model", "left"), ("non-local blocks", "right"), ("params", "right")):
        table.add_column(column, justify=justify)
    table.add_column(f"top-1 ({settings.test_views[0]}x{settings.test_views[1]} views)", justify="right")
    table.add_column("training time", justify="right")
    for r in results:
        table.add_row(
            r.model,
            str(r.nonlocal_blocks),
            f"{r.params / 1e6:.2f}M",
            f"{100 * r.test_top1:.1f}%",
            f"{r.train_seconds:.0f} s",
        )
    console.print(table)
    gap = 100 * (results[0].test_top1 - results[1].test_top1)
    bound = 100 * (0.5 + 0.5 / spec.num_colours)
    console.print(
        f"non-local minus baseline: {gap:+.1f} points on {spec.num_test} test videos. Without non-local blocks "
        f"a C2D network mixes frames only in its final average pool and cannot beat about {bound:.0f}% here.",
        soft_wrap=True,
    )

    video = out / "data" / "videos" / "test" / "00000.mp4"
    model = load_for_inference(str(results[0].model_dir), device="cpu")
    maps = write_attention_maps(model, video, out / "attention")
    console.print(
        "\n[bold]Where everything went[/]\n"
        f"  videos and list files   {out / 'data'}\n"
        f"  training logs           {results[0].run_dir.parent.parent}/<model>/seed{args.seed}/metrics.csv\n"
        f"  trained models          {results[0].model_dir}, {results[1].model_dir}\n"
        f"  attention map           {maps.png}\n"
        f"                          {maps.gif}\n"
        f"                          (where {maps.block} of {results[0].model} looks from a few positions of a test "
        "clip: arrows to the strongest keys, across frames, then one heat map per query)\n"
        "\nNext:\n"
        f"  nlzoo predict-video {video} --model {results[0].model_dir}\n"
        f"  nlzoo explain {video} --model {results[0].model_dir} --block layer3.1_nonlocal\n"
        "  nlzoo fit --config recipes/video/synthetic_c2d_r18_nl.yaml   (the non-local run as a recipe)",
        highlight=False,
        soft_wrap=True,
    )
    return 0
