"""Planning many clusters in parallel: one cycle of every cluster with 1 planning worker vs all cores.

Not a test. 50 embedded simulated clusters of 40 hosts and 1,000 VMs each (seeds 1..50, full
automation, the configured planner), one `ClusterCycle.run()` each -- collect, plan, act, every
step journaled (in memory) -- all started together on a thread per cluster, as the service runs
them. Plans are made by `PlanPool(workers)`: 1 worker plans in this process (the service
before worker processes: the threads take turns at the interpreter), N workers in N spawned
processes. The pools are started (and their processes have imported the engine) before the clock
starts; each configuration runs ``--repeat`` times on fresh clusters and the median is shown.

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
    moves: dict[int, int] = {}
    for workers in (1, a.workers):
        pool = PlanPool(workers)
        try:
            warm(pool, a.hosts, a.vms, a.planner)
            for _ in range(a.repeat):
                runners = cycles(a.clusters, a.hosts, a.vms, a.planner, pool)
                wall, moves[workers] = one_cycle_of_all(runners)
                walls.setdefault(workers, []).append(wall)
        finally:
            pool.close()
    one, many = statistics.median(walls[1]), statistics.median(walls[a.workers])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average before {os.getloadavg()[0]:.1f} (1 min)")
    print(f"{a.clusters} clusters x {a.hosts} hosts x {a.vms} VMs, planner {a.planner}, one cycle of all "
          f"(median of {a.repeat}):")
    print("| workers | wall time (s) | runs (s) | actions carried out |")
    print("| ---: | ---: | --- | ---: |")
    for w in (1, a.workers):
        print(f"| {w} | {statistics.median(walls[w]):.2f} | {', '.join(f'{x:.2f}' for x in walls[w])} | {moves[w]} |")
    print(f"ratio 1 worker / {a.workers} workers: {one / many:.2f}")


if __name__ == "__main__":
    main()
