"""Start-up time of `balancer --help` and `balancer check-config`, against baselines measured in the same run.

Not a test (the tests check only that these commands import no engine, solver, plotting or vCenter client:
tests/test_cli.py). Each sample is a fresh process; the runs are interleaved, so a machine that gets busier
meanwhile slows every row alike, and the median of --runs samples is printed per row. Baselines:

- `python -c pass`: the interpreter's own start (with this environment's site packages);
- the eager import: the modules `balancer/cli.py` imported before its imports were made lazy (every use
  case, the engine, the reports with matplotlib, the sources) -- what `--help` used to pay;
- the libraries' floor: click, PyYAML and pydantic imported and nothing of the balancer -- what any command
  that validates the config pays before it reads a line of it.

Results: docs/benchmarks.md, "Start-up time".

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# what `import balancer.cli` pulled in before it deferred its imports to the commands
EAGER = ("import balancer.app.apply, balancer.app.evacuate, balancer.app.exit_maintenance, balancer.app.history, "
         "balancer.app.oneoff, balancer.app.place, balancer.app.recommend, balancer.app.snapshot, balancer.config, "
         "balancer.engine, balancer.journal.render, balancer.logs, balancer.plan, balancer.report, "
         "balancer.report.domain_plan, balancer.report.placement, balancer.report.table, balancer.snapshot.io, "
         "rich.console")

# the libraries a config's validation needs (pydantic's plugin loader is imported with the first model)
FLOOR = "import click, yaml; from pydantic import BaseModel, ConfigDict, Field; import pydantic.plugin._loader"

# A package installed as usual has its bytecode cached (pip compiles it; Python writes it on first import).
# This environment may set PYTHONDONTWRITEBYTECODE, which would make every process compile the balancer
# anew (about 0.9 s of the cluster maximum's plan): the processes timed here may write and read the cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def sample(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False, env=ENV)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        vcenter = Path(tmp) / "vcenter.yaml"  # the example, with its journal in a directory that exists here
        vcenter.write_text((ROOT / "config" / "vcenter.yaml").read_text().replace(
            "/var/lib/balancer/journal.sqlite", str(Path(tmp) / "journal.sqlite")))
        rows = {
            "python -c pass (baseline: the interpreter)": [py, "-c", "pass"],
            "eager import of the engine, reports, sources (baseline: the old `--help`)": [py, "-c", EAGER],
            "click + PyYAML + pydantic imported (baseline: what validating a config needs)": [py, "-c", FLOOR],
            "balancer --help": [py, "-m", "balancer", "--help"],
            "balancer (no arguments: the help)": [py, "-m", "balancer"],
            "balancer check-config config/sim-fast.yaml": [py, "-m", "balancer", "check-config",
                                                           str(ROOT / "config" / "sim-fast.yaml")],
            "balancer check-config config/vcenter.yaml": [py, "-m", "balancer", "check-config", str(vcenter)],
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for name, cmd in rows.items():  # warm the file cache and the bytecode once
            sample(cmd, tmp)
        for _ in range(args.runs):
            for name, cmd in rows.items():
                times[name].append(sample(cmd, tmp))
    base = statistics.median(times[next(iter(rows))])
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; median of {args.runs} runs (min-max)")
    print()
    print("| command | wall time, median (min-max) | over `python -c pass` |")
    print("| --- | --- | --- |")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} s ({min(ts):.3f}-{max(ts):.3f}) | {med - base:+.3f} s |")


if __name__ == "__main__":
    main()
