"""Planning a balancing domain: the moves between clusters against one cluster's own plan.

Not a test. ``--clusters`` embedded simulated clusters (seeds 1.., ``--hosts`` hosts, the first
given ``--vms`` x 2 VMs, so it is over, the others ``--vms`` / 2), their snapshots taken once; then, each
``--repeat`` times, the domain plan (high 85 %, room 75 %) (``plan_domain``, ``--moves`` moves at most) and -- the
baseline, measured in the same run -- the over cluster's own compute plan at threshold 3
(``make_plan``, cp-sat, no storage). Shown: the median wall time of each and their ratio, the
moves, and the over cluster's share before and after.

    python benchmarks/domain.py [--clusters 4] [--hosts 40] [--vms 2500] [--moves 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balancer.config import SimConfig  # noqa: E402
from balancer.engine import DomainMember, DomainOptions, PlanOptions, make_plan, plan_domain  # noqa: E402
from balancer.sources.sim import SimulatedCluster  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=4)
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--vms", type=int, default=2500)
    ap.add_argument("--moves", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    snaps = {}
    for i in range(args.clusters):
        vms = 2 * args.vms if i == 0 else args.vms // 2
        sim = SimulatedCluster(SimConfig(hosts=args.hosts, vms=min(vms, 10_000), seed=i + 1, cluster=f"c{i}",
                                         vm_prefix=f"c{i}-", datastores=8))
        snaps[f"c{i}"] = sim.snapshot()
    options = DomainOptions("bench", tuple(DomainMember(n, "sim") for n in snaps), max_moves=args.moves)
    domain_s, own_s = [], []
    plan = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        plan = plan_domain(snaps, options)
        domain_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        make_plan(snaps["c0"], PlanOptions(time_limit_s=3.0))
        own_s.append(time.perf_counter() - t0)
    assert plan is not None
    d, o = statistics.median(domain_s), statistics.median(own_s)
    c0 = plan.cluster_load("c0")
    vms = sum(len(s.vms) for s in snaps.values())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    print(f"{args.clusters} clusters, {args.hosts} hosts each, {vms} VMs in all; cluster c0 "
          f"{len(snaps['c0'].vms)} VMs at {100 * max(c0.cpu_before, c0.mem_before):.0f} % (high 85 %); the others at "
          + ", ".join(f"{100 * max(c.cpu_before, c.mem_before):.0f} %" for c in plan.clusters[1:]))
    print(f"domain plan: {d:.3f} s, {len(plan.moves)} moves, c0 -> {100 * max(c0.cpu_after, c0.mem_after):.0f} %")
    print(f"c0's own compute plan (baseline): {o:.3f} s")
    print(f"ratio domain / own plan: {d / o:.3f}")


if __name__ == "__main__":
    main()
