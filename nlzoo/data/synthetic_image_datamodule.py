"""``SyntheticImageDataModule``: the "matching corners" images of :mod:`nlzoo.data.synthetic_images`, made on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .image_folder import ImageFolderDataModule
from .synthetic_common import LABEL_NAMES
from .synthetic_images import SyntheticImageSpec, ensure_synthetic_images


class SyntheticImageDataModule(ImageFolderDataModule):
    """An :class:`ImageFolderDataModule` over synthetic images, written to ``root`` by ``prepare_data`` if missing.

    Args:
        root: where the class folders live (generated there on first use).
        num_train: training images.
        num_val: validation images.
        num_test: test images.
        image_size: (H, W) of the images.
        num_colours: palette size (see :class:`~nlzoo.data.synthetic_images.SyntheticImageSpec`).
        data_seed: seed of the generated data (separate from the training seed).
        **kwargs: :class:`ImageFolderDataModule` arguments (``model``, ``batch_size``, ...). Its ``data_config``
            defaults to crops of the whole image (``crop_size`` = ``image_size``, ``crop_pct`` = 1), whatever the
            model's own data config says; entries given here override those.
    """

    def __init__(
        self,
        root: str = "outputs/data/synthetic_images",
        *,
        num_train: int = 512,
        num_val: int = 128,
        num_test: int = 128,
        image_size: tuple[int, int] = (64, 64),
        num_colours: int = 6,
        data_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        self.spec = SyntheticImageSpec(
            num_train=num_train,
            num_val=num_val,
            num_test=num_test,
            size=tuple(image_size),  # type: ignore[arg-type]
            num_colours=num_colours,
            seed=data_seed,
        )
        folder = Path(root)
        kwargs["data_config"] = {"crop_size": tuple(image_size), "crop_pct": 1.0, **(kwargs.get("data_config") or {})}
        super().__init__(
            str(folder / "train"),
            val=str(folder / "val") if num_val else None,
            test=str(folder / "test") if num_test else None,
            label_names=list(LABEL_NAMES),
            **kwargs,
        )
        self.data_root = folder

    def prepare_data(self) -> None:
        ensure_synthetic_images(self.data_root, self.spec)
