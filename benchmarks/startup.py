"""Start-up cost: import time and peak RSS of ``import nlzoo``, ``nlzoo --help`` and each ``nlzoo CMD --help``,
against plain ``import torch``, each the median of fresh processes (the reference is measured in the same run,
interleaved, so the machine's load affects both alike).

    python benchmarks/startup.py            # 5 processes per row
    python benchmarks/startup.py --quick    # 1 process per row, a few rows (the test suite's smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run in the child: the work, then print wall seconds of the work and peak RSS (MiB) as JSON.
PROBE = """
import contextlib, io, json, resource, time
start = time.perf_counter()
{work}
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("\\n@@" + json.dumps({{"s": seconds, "rss": rss}}))
"""
CLI = """
from nlzoo.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit:
        pass
"""


def rows(quick: bool) -> dict[str, str]:
    from nlzoo.cli import COMMANDS, LIGHTNING_COMMANDS

    cases = {
        "import torch": "import torch",
        "import nlzoo": "import nlzoo",
        "nlzoo --help": CLI.format(argv=["--help"]),
    }
    if not quick:
        cases["from nlzoo import load (the zoo)"] = "from nlzoo import load"
    for name in [*LIGHTNING_COMMANDS[:1], *COMMANDS][: 2 if quick else None]:
        cases[f"nlzoo {name} --help"] = CLI.format(argv=[name, "--help"])
    return cases


def measure(work: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(work=work)], capture_output=True, text=True, env=env, check=True
    )
    total = time.perf_counter() - start
    result = json.loads(out.stdout.rsplit("@@", 1)[1])
    return {"work_s": result["s"], "process_s": total, "rss_mib": result["rss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    cases = rows(args.quick)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved: one process of each row per round
        for name, work in cases.items():
            samples[name].append(measure(work))
    table = {name: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for name, runs in samples.items()}
    torch_s = table["import torch"]["work_s"]
    for row in table.values():
        row["minus_torch_s"] = row["work_s"] - torch_s
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"median of {repeats} fresh processes; reference: import torch = {torch_s:.2f} s in this run")
    print(f"{'':38} {'work s':>8} {'process s':>10} {'- torch s':>10} {'peak RSS MiB':>13}")
    for name, row in table.items():
        print(
            f"{name:38} {row['work_s']:8.2f} {row['process_s']:10.2f} {row['minus_torch_s']:+10.2f} "
            f"{row['rss_mib']:13.0f}"
        )


if __name__ == "__main__":
    main()
