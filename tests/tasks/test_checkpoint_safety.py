"""A Lightning checkpoint is data: nothing in it chooses a module to import or code to run (issue 14)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlzoo.cli import main
from nlzoo.errors import UnsafeCheckpointError, WeightsError
from nlzoo.tasks.export import model_from_checkpoint


def _ckpt(path: Path, class_path: str, **extra: object) -> Path:
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": class_path}, **extra}, path)
    return path


def test_a_class_path_outside_nlzoos_tasks_is_never_imported(tmp_path: Path) -> None:
    assert "this" not in sys.modules
    with pytest.raises(UnsafeCheckpointError, match="'this.Nothing', which is not one of nlzoo's"):
        model_from_checkpoint(_ckpt(tmp_path / "zen.ckpt", "this.Nothing"))
    assert "this" not in sys.modules  # importing it would have printed the Zen of Python


def test_a_module_beside_the_checkpoint_does_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "beside.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Task: pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnsafeCheckpointError):
        model_from_checkpoint(_ckpt(tmp_path / "m.ckpt", "beside.Task"))
    assert not marker.exists() and "beside" not in sys.modules


@pytest.mark.parametrize(
    "class_path",
    [
        "nlzoo.tasks.os",
        "nlzoo.tasks.pose.VideoClassifier",
        "nlzoo.tasksX.VideoClassifier",
        "nlzoo.tasks.MultiViewMetrics",
    ],
)
def test_only_nlzoos_task_classes_by_their_own_names(tmp_path: Path, class_path: str) -> None:
    with pytest.raises(UnsafeCheckpointError, match="nlzoo.tasks.VideoClassifier"):
        model_from_checkpoint(_ckpt(tmp_path / "m.ckpt", class_path))


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_payload_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = _ckpt(tmp_path / "m.ckpt", "nlzoo.tasks.VideoClassifier", payload=_RunsCode(marker))
    with pytest.raises(UnsafeCheckpointError, match=r"holds the object .*system.*data only"):
        model_from_checkpoint(path)
    assert not marker.exists()


def test_empty_and_truncated_checkpoints_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(WeightsError, match="is empty"):
        model_from_checkpoint(tmp_path / "empty.ckpt")
    whole = _ckpt(tmp_path / "whole.ckpt", "nlzoo.tasks.VideoClassifier", weights=torch.zeros(1000)).read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "text.ckpt").write_text("x\n")
    with pytest.raises(WeightsError, match="is not a PyTorch checkpoint"):
        model_from_checkpoint(tmp_path / "text.ckpt")
    for name in ("empty.ckpt", "cut.ckpt", "text.ckpt"):
        assert main(["export", str(tmp_path / name), str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(tmp_path / name) in err[0]
    assert not (tmp_path / "out").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(min_size=1, max_size=300), st.text(min_size=1, max_size=300).map(str.encode)))
def test_any_bytes_as_a_checkpoint_are_one_nlzoo_error(tmp_path: Path, data: bytes) -> None:
    """Text or random bytes saved as .ckpt: the legacy unpickler fails with KeyError, ValueError, ... on them."""
    (tmp_path / "any.ckpt").write_bytes(data)
    with pytest.raises(WeightsError):
        model_from_checkpoint(tmp_path / "any.ckpt")


def test_a_folder_given_as_checkpoint_says_so(tmp_path: Path) -> None:
    from nlzoo.errors import InputNotFoundError

    with pytest.raises(InputNotFoundError, match="is a folder; give the .ckpt file"):
        model_from_checkpoint(tmp_path)
