"""Fast start: ``import nlzoo`` and every non-Lightning ``--help`` import no heavy module (not even torch).

Module sets are asserted, never timings (benchmarks/startup.py measures those).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("timm", "torchvision", "pytorch_lightning", "lightning", "huggingface_hub", "torch")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules that are in sys.modules after ``code`` runs in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint('@@' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.rsplit("@@", 1)[1])


def test_import_nlzoo_loads_no_heavy_module() -> None:
    assert _loaded_after("import nlzoo; nlzoo.__version__") == []


def test_help_of_every_command_loads_no_heavy_module() -> None:
    code = """
import contextlib, io
from nlzoo.cli import COMMANDS, LIGHTNING_COMMANDS, main
for argv in (["--help"], *([name, "--help"] for name in (*LIGHTNING_COMMANDS, *COMMANDS))):
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            main(argv)
        except SystemExit as done:
            assert done.code == 0, (argv, done.code)
    assert "usage: nlzoo" in text.getvalue() or main(argv) == 0, argv
"""
    assert _loaded_after(code) == []


def test_public_names_resolve_lazily() -> None:
    import nlzoo

    assert callable(nlzoo.load) and callable(nlzoo.list_models) and nlzoo.NonLocalBlock.__name__ == "NonLocalBlock"
    assert set(nlzoo.__all__) <= set(dir(nlzoo))
    assert nlzoo.zoo.list_models is nlzoo.list_models and nlzoo.errors.NlzooError.__name__ == "NlzooError"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        nlzoo.nonexistent  # noqa: B018


def test_help_constants_match_the_zoo() -> None:
    from nlzoo.cli.convert import SOURCE_NAMES
    from nlzoo.cli.models import TASKS
    from nlzoo.zoo.config import TASKS as ZOO_TASKS
    from nlzoo.zoo.converters import SOURCES

    assert tuple(SOURCES) == SOURCE_NAMES and TASKS == ZOO_TASKS


def test_startup_benchmark_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = REPO / "benchmarks/startup.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    table = json.loads(out.stdout)
    assert table["import torch"]["rss_mib"] > table["nlzoo --help"]["rss_mib"] > 0


def test_the_short_lightning_help_names_real_options(capsys, monkeypatch) -> None:
    from nlzoo.cli import main

    assert main(["fit", "--help"]) == 0
    short = capsys.readouterr().out
    named = set(re.findall(r"(--[a-z_]+(?:\.[a-z_]+)*)", short)) - {"--help-all"}
    monkeypatch.setattr("sys.argv", ["nlzoo"])
    assert main(["fit", "--help-all"]) == 0
    full = capsys.readouterr().out
    assert "--trainer.max_epochs" in full and len(full.splitlines()) > 3 * len(short.splitlines())
    missing = [option for option in named if option not in full and "init_args" not in option]
    assert missing == [] and {"--config", "--print_config", "--ckpt_path", "--trainer"} <= named
    # the init_args examples work as written
    recipe = str(REPO / "recipes/video/synthetic_c2d_r18_nl.yaml")
    overrides = ["--model.init_args.lr", "0.01", "--data.init_args.batch_size", "8"]
    assert main(["fit", "--config", recipe, *overrides, "--print_config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["init_args"]["lr"] == 0.01 and config["data"]["init_args"]["batch_size"] == 8
