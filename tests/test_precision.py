"""``nlzoo.precision``: what ``auto`` resolves to on each kind of hardware, and what each precision runs."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nlzoo import precision
from nlzoo.errors import ConfigError
from nlzoo.precision import inference_precision, resolve_precision


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict]:
    """A pretend CPU: set ``flags`` and ``speedup`` (what the micro-benchmark would measure); counts runs."""
    state: dict = {"flags": frozenset(), "speedup": 2.0, "runs": 0}

    def measure() -> float:
        state["runs"] += 1
        return state["speedup"]

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_flags", lambda: state["flags"])
    monkeypatch.setattr(precision, "cpu_model", lambda: "Test CPU 9000")
    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", measure)
    precision.cpu_bf16_pays.cache_clear()
    yield state
    precision.cpu_bf16_pays.cache_clear()


def test_explicit_precisions_pass_through_and_unknown_ones_list_the_choices(machine: dict) -> None:
    machine["flags"] = frozenset({"avx512_bf16", "avx512_fp16"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("fp32", "bf16", "fp16"):
            assert resolve_precision(name, "cpu") == name
    with pytest.raises(ConfigError, match="unknown precision 'fp8'; choose one of auto, fp32, bf16, fp16"):
        resolve_precision("fp8")


def test_auto_is_fp32_on_a_cpu_without_bf16_instructions(machine: dict) -> None:
    machine["flags"] = frozenset({"avx2", "fma", "avx512f"})
    assert resolve_precision("auto", "cpu") == "fp32"
    assert machine["runs"] == 0


@pytest.mark.parametrize(
    ("flags", "slow"), [(set(), {"bf16", "fp16"}), ({"avx512_bf16"}, {"fp16"}), ({"amx_bf16", "amx_fp16"}, set())]
)
def test_a_half_precision_the_cpu_has_no_instructions_for_warns_and_its_advice_works(
    machine: dict, flags: set, slow: set
) -> None:
    machine["flags"], machine["speedup"] = frozenset(flags), 0.9
    for name in ("bf16", "fp16"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert resolve_precision(name, "cpu") == name
        messages = [str(w.message) for w in caught if issubclass(w.category, precision.SlowPrecisionWarning)]
        assert len(messages) == (name in slow)
        if name in slow:
            (message,) = messages
            assert f"precision {name} on this CPU (Test CPU 9000) runs emulated" in message
            advised = message.split("use precision ")[1].split(" ")[0]
            picked = message.rsplit("which picks ", 1)[1].split(" ")[0]
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # following the advice warns no more and gets what it said
                assert resolve_precision(advised, "cpu") == picked
            assert picked == ("bf16" if flags & {"amx_bf16"} else "fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "meta") == "bf16"  # only CPUs are judged


def test_auto_is_bf16_with_amx_without_measuring(machine: dict) -> None:
    machine["flags"] = frozenset({"avx512_bf16", "amx_bf16", "amx_tile"})
    assert resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert machine["runs"] == 0


@pytest.mark.parametrize(("speedup", "expected"), [(1.9, "bf16"), (1.05, "fp32"), (0.7, "fp32")])
def test_avx512_bf16_without_amx_is_measured_once_and_cached(machine: dict, tmp_path: Path, speedup, expected) -> None:
    machine["flags"], machine["speedup"] = frozenset({"avx512f", "avx512_bf16"}), speedup
    assert resolve_precision("auto") == expected
    cache = json.loads((tmp_path / "nlzoo" / "precision.json").read_text())
    (entry,) = cache.values()
    assert entry["bf16_speedup"] == speedup
    precision.cpu_bf16_pays.cache_clear()  # a new process: the file answers, nothing is re-measured
    assert resolve_precision("auto") == expected
    assert machine["runs"] == 1


def test_another_torch_version_or_a_corrupt_cache_measures_again(machine: dict, tmp_path: Path, monkeypatch) -> None:
    machine["flags"] = frozenset({"avx512_bf16"})
    assert resolve_precision("auto") == "bf16"
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    precision.cpu_bf16_pays.cache_clear()
    machine["speedup"] = 1.0
    assert resolve_precision("auto") == "fp32"
    assert machine["runs"] == 2
    (tmp_path / "nlzoo" / "precision.json").write_text("{not json")
    precision.cpu_bf16_pays.cache_clear()
    assert resolve_precision("auto") == "fp32" and machine["runs"] == 3


def test_verdicts_of_other_threads_cores_or_benchmarks_are_not_reused(
    machine: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A VM reports "Intel(R) Xeon(R) Processor" for cores with and without AMX; an earlier benchmark compared
    bf16 against PyTorch's slow batch-1 fp32 kernel and said 1.42x where the network ran 0.8x."""
    machine["flags"] = frozenset({"avx512_bf16"})
    old = {f"Test CPU 9000 | torch {torch.__version__}": {"bf16_speedup": 1.42, "threads": 2}}
    (tmp_path / "nlzoo").mkdir()
    (tmp_path / "nlzoo" / "precision.json").write_text(json.dumps(old))
    machine["speedup"] = 0.6
    assert resolve_precision("auto") == "fp32" and machine["runs"] == 1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        precision.cpu_bf16_pays.cache_clear()
        assert resolve_precision("auto") == "fp32" and machine["runs"] == 2
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(precision, "_cpuinfo_field", lambda *names: "143" if "model" in names else "6")
    precision.cpu_bf16_pays.cache_clear()
    assert resolve_precision("auto") == "fp32" and machine["runs"] == 3
    assert len(json.loads((tmp_path / "nlzoo" / "precision.json").read_text())) == 4  # the old entry stays


@pytest.mark.parametrize(
    ("capability", "bf16", "expected"), [((9, 0), True, "bf16"), ((7, 5), False, "fp16"), ((6, 1), False, "fp32")]
)
def test_auto_on_cuda_follows_the_devices_units(monkeypatch, capability, bf16, expected) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    assert resolve_precision("auto", "cuda:0") == expected


def test_auto_is_fp32_on_other_devices() -> None:
    assert resolve_precision("auto", "meta") == "fp32"


def test_inference_precision_enables_autocast_only_for_half_precisions() -> None:
    with inference_precision("fp32", "cpu") as resolved:
        assert resolved == "fp32" and not torch.is_autocast_enabled("cpu")
    with inference_precision("bf16", "cpu") as resolved:
        assert resolved == "bf16" and torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")


def test_the_micro_benchmark_measures_a_real_ratio() -> None:
    assert 0 < precision.measure_cpu_bf16_speedup(rounds=1) < float("inf")
