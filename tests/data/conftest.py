from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def video_index_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exact video indices go to a temporary folder, not the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("video-index")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NLZOO_VIDEO_INDEX_CACHE", str(folder))
        yield folder
