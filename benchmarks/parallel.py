"""Planning many clusters in parallel: one cycle of every cluster with 1 planning worker vs all cores.

Not a test. 50 embedded simulated clusters of 40 hosts and 1,000 VMs each (seeds 1..50, full
automation, the configured planner), one `ClusterCycle.run()` each -- collect, plan, act, every
step journaled (in memory) -- all started together on a thread per cluster, as the service runs
them. Plans are made by `PlanPool(workers)`: 1 worker plans in this process (the service
before worker processes: the threads take turns at the interpreter), N workers in N spawned
processes. The pools are started (and their processes have imported the engine) before the clock
starts; the two configurations take turns, ``--repeat`` times each on fresh clusters (so a change
in the machine's other load falls on both), and the median is shown, with the CPU time spent
(this process and its planning processes) and the machine's load average.

    python benchmarks/parallel.py [--clusters 50] [--hosts 40] [--vms 1000] [--planner cp-sat] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balancer.config import parse_config  # noqa: E402
from balancer.journal import Journal  # noqa: E402
from balancer.service import ClusterCycle  # noqa: E402
from balancer.service.workers import PlanPool  # noqa: E402
from balancer.sources.sim import SimulatedCluster  # noqa: E402


def cycles(n: int, hosts: int, vms: int, planner: str, pool: PlanPool) -> list[ClusterCycle]:
    out = []
    for i in range(n):
        cfg = parse_config({"sim": {"hosts": hosts, "vms": vms, "seed": i + 1, "cluster": f"c{i:02d}"},
                            "drs": {"automation": "full", "planner": planner}})
        sim = SimulatedCluster(cfg.sim)
        out.append(ClusterCycle(f"c{i:02d}", cfg, Journal(":memory:"), open_source=lambda s=sim: s,
                                planner=pool.plan))
    return out


def cpu_seconds(pool: PlanPool) -> float:
    """CPU time (user + system) of this process and of the pool's processes so far."""
    t = os.times()
    total = t.user + t.system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in list(getattr(pool._pool, "_processes", None) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def one_cycle_of_all(runners: list[ClusterCycle]) -> tuple[float, int]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(runners)) as threads:
        results = list(threads.map(lambda r: r.run(), runners))
    wall = time.perf_counter() - t0
    bad = [r.cluster for r in results if r is None or r.status != "ok"]
    if bad:
        raise SystemExit(f"cycles failed: {bad}")
    return wall, sum(len(r.results) for r in results)


def warm(pool: PlanPool, hosts: int, vms: int, planner: str) -> None:
    """Start the pool's processes (each imports the engine) before timing."""
    runners = cycles(pool.workers, hosts, vms, planner, pool)
    with ThreadPoolExecutor(max_workers=len(runners)) as threads:
        list(threads.map(lambda r: r.run(), runners))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--planner", default="cp-sat", choices=["cp-sat", "greedy"])
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="all cores (default)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    walls: dict[int, list[float]] = {}
    cpus: dict[int, list[float]] = {}
    moves: dict[int, int] = {}
    loads: list[float] = []
    pools = {w: PlanPool(w) for w in (1, a.workers)}
    try:
        for w, pool in pools.items():
            warm(pool, a.hosts, a.vms, a.planner)
        for _ in range(a.repeat):
            for w, pool in pools.items():
                runners = cycles(a.clusters, a.hosts, a.vms, a.planner, pool)
                loads.append(os.getloadavg()[0])
                c0 = cpu_seconds(pool)
                wall, moves[w] = one_cycle_of_all(runners)
                cpus.setdefault(w, []).append(cpu_seconds(pool) - c0)
                walls.setdefault(w, []).append(wall)
    finally:
        for pool in pools.values():
            pool.close()
    one, many = statistics.median(walls[1]), statistics.median(walls[a.workers])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"1-minute load average before the runs {min(loads):.1f}-{max(loads):.1f}")
    print(f"{a.clusters} clusters x {a.hosts} hosts x {a.vms} VMs, planner {a.planner}, one cycle of all "
          f"(median of {a.repeat}):")
    print("| workers | wall time (s) | runs (s) | CPU time (s) | actions carried out |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for w in (1, a.workers):
        print(f"| {w} | {statistics.median(walls[w]):.2f} | {', '.join(f'{x:.2f}' for x in walls[w])} | "
              f"{statistics.median(cpus[w]):.2f} | {moves[w]} |")
    print(f"ratio 1 worker / {a.workers} workers: {one / many:.2f}")


if __name__ == "__main__":
    main()
