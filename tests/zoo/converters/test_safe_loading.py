"""Checkpoints load without running code from them: Caffe2 pickles through a restricted unpickler,
PyTorch files through ``torch.load(weights_only=True)``."""

from __future__ import annotations

import builtins
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nlzoo.zoo import convert_checkpoint
from nlzoo.zoo.converters import UnsafeCheckpointError, read_checkpoint
from nlzoo.zoo.converters.safe_pickle import load_pickle


class _Exploit:
    """Unpickling this calls ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _payloads(marker: Path) -> list[_Exploit]:
    return [
        _Exploit(os.system, f"touch {marker}"),
        _Exploit(builtins.exec, f"open({str(marker)!r}, 'w').write('pwned')"),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["os.system", "builtins.exec"])
def test_a_malicious_caffe2_pickle_does_not_run(tmp_path: Path, which: int) -> None:
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.pkl"
    blobs = {"conv1_w": np.zeros((64, 3, 1, 7, 7), np.float32), "res_conv1_bn_s": _payloads(marker)[which]}
    checkpoint.write_bytes(pickle.dumps({"blobs": blobs}, protocol=2))
    with pytest.raises(
        UnsafeCheckpointError, match=r"refused to load the global (posix|__builtin__|builtins)\.(system|exec)"
    ):
        convert_checkpoint("caffe2", "c2d_r50", checkpoint, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_malicious_torch_file_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.pyth"
    torch.save({"model_state": {"s1.pathway0_stem.conv.weight": torch.zeros(1)}, "x": _payloads(marker)[0]}, checkpoint)
    with pytest.raises(UnsafeCheckpointError, match=r"weights_only=True\) refused it"):
        convert_checkpoint("pyslowfast", "c2d_r50", checkpoint, tmp_path / "out")
    assert not marker.exists()


def _py2_pickle_of_blobs(blobs: dict[str, np.ndarray]) -> bytes:
    """Bytes as Python 2's cPickle (protocol 2) writes ``dict(blobs={name: float32 array})``.

    Python 2 names ``numpy.core.multiarray`` and stores array data as a byte ``str`` (SHORT_BINSTRING /
    BINSTRING), which Python 3 must decode as latin-1: the case of the authors' published files.
    """

    def string(data: bytes) -> bytes:
        return (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<I", len(data))) + data

    def array(a: np.ndarray) -> bytes:
        shape = b"".join(b"J" + struct.pack("<i", s) for s in a.shape)
        tuple_op = {1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(a.ndim)
        shape_tuple = b"(" + shape + b"t" if tuple_op is None else shape + tuple_op
        return (
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string(b"b") + b"\x87R"
            b"(K\x01" + shape_tuple + b"cnumpy\ndtype\n" + string(b"f4") + b"K\x00K\x01\x87R"
            b"(K\x03"
            + string(b"<")
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            + string(a.astype("<f4").tobytes())
            + b"tb"
        )

    body = b"}" + b"".join(string(k.encode()) + array(v) + b"s" for k, v in blobs.items())
    return b"\x80\x02}" + string(b"blobs") + body + b"s."


def test_python2_caffe2_pickles_load(tmp_path: Path) -> None:
    blobs = {"conv1_w": np.random.rand(4, 3, 1, 2, 2).astype(np.float32), "pred_b": np.arange(5, dtype=np.float32)}
    path = tmp_path / "py2.pkl"
    path.write_bytes(_py2_pickle_of_blobs(blobs))
    loaded = load_pickle(path)["blobs"]
    assert set(loaded) == set(blobs)
    for name, value in blobs.items():
        np.testing.assert_array_equal(loaded[name], value)


def test_legacy_torch_files_go_through_torch_load(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}}, path, _use_new_zipfile_serialization=False)
    raw = read_checkpoint(path)
    assert raw.container == "torch"
    torch.testing.assert_close(raw.payload["state_dict"]["w"], torch.ones(2))


def test_files_that_are_no_checkpoint_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "notes.pkl"
    junk.write_text("not a checkpoint")
    with pytest.raises(UnsafeCheckpointError, match="neither a PyTorch checkpoint nor a pickle of arrays"):
        read_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pkl")
