"""Replay speed benchmark: a full trace day (288 five-minute steps) of a ~1,000-VM trace on 40 hosts.

Not a test. Each run is `balancer simulate --format json` in a fresh process; it prints the
process wall time (Python start-up included), the replay's own `wall_seconds` and
`plan_seconds`, and the ratio of the replay's wall time to the baseline measured in the same run:
policy `none` (the same replay with no planning: trace, simulator, snapshots and measuring only).
Target: <= 60 s for `ours` on a 2-core machine. Results: docs/benchmarks.md.

    python benchmarks/replay.py [--trace 20110303] [--hosts 40] [--runs ours,greedy,ours+dpm]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def run(trace: str, hosts: int, policy: str, dpm: bool) -> dict:
    cmd = [sys.executable, "-m", "balancer", "simulate", "--trace", trace, "--hosts", str(hosts),
           "--policy", policy, "--dpm", "on" if dpm else "off", "--format", "json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    out["process_seconds"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="20110303")
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--runs", default="ours,greedy,ours+dpm,greedy+dpm",
                    help="comma-separated policy[+dpm] runs after the 'none' baseline")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    base = run(args.trace, args.hosts, "none", False)
    s = base["scenario"]
    print(f"trace {args.trace}: {s['vms']} VMs, {s['hosts']} hosts, {s['steps']} steps")
    print("| run | process s | replay s | planning s | migrations | replay / none |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| none (baseline) | {base['process_seconds']:.1f} | {base['wall_seconds']:.1f} | 0.0 | 0 | 1.00 |")
    for spec in args.runs.split(","):
        policy, _, dpm = spec.partition("+")
        r = run(args.trace, args.hosts, policy, dpm == "dpm")
        print(f"| {spec} | {r['process_seconds']:.1f} | {r['wall_seconds']:.1f} | {r['plan_seconds']:.1f} | "
              f"{r['migrations']} | {r['wall_seconds'] / base['wall_seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
