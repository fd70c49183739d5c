from __future__ import annotations

from pathlib import Path

import pytest

from nlzoo.data import SyntheticVideoSpec, ensure_synthetic_videos

from .tiny import TINY_SPEC


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny synthetic dataset, generated once (as the data module's prepare_data would)."""
    spec = SyntheticVideoSpec(
        num_train=TINY_SPEC["num_train"],
        num_val=TINY_SPEC["num_val"],
        num_test=TINY_SPEC["num_test"],
        num_frames=TINY_SPEC["video_frames"],
    )
    return str(ensure_synthetic_videos(Path(tmp_path_factory.mktemp("tasks")) / "synthetic", spec))
