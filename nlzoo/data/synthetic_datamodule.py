"""``SyntheticVideoDataModule``: the "same colour?" videos of :mod:`nlzoo.data.synthetic`, generated on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .synthetic import SyntheticVideoSpec, ensure_synthetic_videos
from .synthetic_common import LABEL_NAMES
from .video_datamodule import VideoDataModule


class SyntheticVideoDataModule(VideoDataModule):
    """A :class:`VideoDataModule` over synthetic videos, written to ``root`` by ``prepare_data`` if missing.

    Args:
        root: where the videos and list files live (generated there on first use).
        num_train: training videos.
        num_val: validation videos.
        num_test: test videos.
        video_frames: frames per video (pick the clip's num_frames x sampling_rate to cover them).
        video_size: (H, W) of the videos.
        num_colours: palette size (see :class:`~nlzoo.data.synthetic.SyntheticVideoSpec`).
        object_size: side of the two coloured squares, in pixels.
        margin: minimum distance of the squares from the border.
        distractors: drifting grey squares per video.
        noise: standard deviation of the background noise (0-255 scale).
        data_seed: seed of the generated data (separate from the training seed).
        **kwargs: :class:`VideoDataModule` arguments (``model``, ``data_config``, ``batch_size``, ...).
    """

    def __init__(
        self,
        root: str = "outputs/data/synthetic_video",
        *,
        num_train: int = 256,
        num_val: int = 64,
        num_test: int = 64,
        video_frames: int = 16,
        video_size: tuple[int, int] = (64, 64),
        num_colours: int = 6,
        object_size: int = 8,
        margin: int = 10,
        distractors: int = 3,
        noise: float = 12.0,
        data_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        self.spec = SyntheticVideoSpec(
            num_train=num_train,
            num_val=num_val,
            num_test=num_test,
            num_frames=video_frames,
            size=tuple(video_size),  # type: ignore[arg-type]
            num_colours=num_colours,
            object_size=object_size,
            margin=margin,
            distractors=distractors,
            noise=noise,
            seed=data_seed,
        )
        folder = Path(root)
        super().__init__(
            str(folder / "train.txt"),
            val=str(folder / "val.txt") if num_val else None,
            test=str(folder / "test.txt") if num_test else None,
            label_names=list(LABEL_NAMES),
            **kwargs,
        )
        self.data_root = folder

    def prepare_data(self) -> None:
        ensure_synthetic_videos(self.data_root, self.spec)
