"""The inference commands' allocator setting: large freed blocks stay in the process (glibc)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from nlzoo.inference.allocator import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallinfo2")

# Prints the bytes glibc holds in mmap'd blocks while a 64 MB tensor is alive, after `keep` (or not).
PROBE = """
import ctypes, sys, torch
from nlzoo.inference.allocator import keep_freed_memory
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in FIELDS.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
before = libc.mallinfo2().hblkhd
t = torch.empty(64 << 20, dtype=torch.uint8)
print(kept, libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallinfo2 is needed to see where a block came from")
def test_large_blocks_come_from_the_heap_once_asked() -> None:
    def mmapped(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
        kept, grown = out.stdout.split()
        return kept, int(grown)

    kept, grown = mmapped("plain")
    assert kept == "None" and grown >= 64 << 20  # glibc's default: a block of its own, unmapped when freed
    assert mmapped("keep") == ("True", 0)  # now from the heap, where a free keeps it for the next one


def test_other_platforms_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False


@pytest.mark.parametrize(
    ("argv", "kept"), [(["predict-video", "missing.mp4", "--model", "m"], True), (["models", "nothing*"], False)]
)
def test_commands_that_run_forward_passes_keep_freed_memory(monkeypatch: pytest.MonkeyPatch, argv, kept) -> None:
    from nlzoo import cli
    from nlzoo.inference import allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(True) or True)
    cli.main(argv)  # predict-video stops at the missing file (exit 2), after the setting
    assert bool(calls) is kept
    assert set(cli.FORWARD_PASS_COMMANDS) <= set(cli.COMMANDS)
