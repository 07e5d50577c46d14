"""Optimiser benchmark: ours (CP-SAT) against the DRS-style greedy hill-climb, at the same move budget.

Not a test. Generates clusters of 16/200, 32/1,500, 64/5,000 and 96/10,000 hosts/VMs with
heterogeneous hosts, rules and a skewed start; for each, runs both planners in a fresh
process (`balancer recommend --snapshot S --format json`, end to end) and prints wall time,
peak memory, moves, imbalance before/after and the ratio ours/greedy.

    python benchmarks/optimizer.py [--sizes 16x200,32x1500] [--budget-share 0.02] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time

SIZES = [(16, 200), (32, 1500), (64, 5000), (96, 10000)]
HOST_KINDS = [(76800, 524288), (57600, 393216), (115200, 1048576), (44800, 262144)]
VM_KINDS = [(2, 4096, 0.4), (4, 16384, 0.35), (8, 32768, 0.2), (16, 65536, 0.05)]


def make_cluster(n_hosts: int, n_vms: int, seed: int) -> dict:
    rng = random.Random(seed)
    hosts = []
    for i in range(n_hosts):
        cpu, mem = HOST_KINDS[i % len(HOST_KINDS)]
        hosts.append({"name": f"esx{i:03d}", "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem})
    cap_cpu = sum(h["cpu_capacity_mhz"] for h in hosts)
    cap_mem = sum(h["mem_capacity_mb"] for h in hosts)
    # VM sizes scaled so the cluster runs at about 55 % CPU and 60 % memory
    kinds = rng.choices(VM_KINDS, weights=[k[2] for k in VM_KINDS], k=n_vms)
    raw_cpu = [k[0] * 2400 * rng.betavariate(1.2, 3) for k in kinds]
    raw_mem = [k[1] * rng.uniform(0.3, 0.9) for k in kinds]
    fc = 0.55 * cap_cpu / sum(raw_cpu)
    fm = 0.60 * cap_mem / sum(raw_mem)
    used = [[0.0, 0.0] for _ in hosts]
    vms = []
    # skewed start: hosts weighted towards the first ones, filled up to 88 % of their capacity
    weights = [2.0 - 1.5 * i / max(n_hosts - 1, 1) for i in range(n_hosts)]
    for j, k in enumerate(kinds):
        cpu, mem = raw_cpu[j] * fc, raw_mem[j] * fm
        for _ in range(50):
            h = rng.choices(range(n_hosts), weights=weights)[0]
            if used[h][0] + cpu <= 0.88 * hosts[h]["cpu_capacity_mhz"] and used[h][1] + mem <= 0.88 * hosts[h]["mem_capacity_mb"]:
                break
        else:
            h = min(range(n_hosts), key=lambda i: used[i][1] / hosts[i]["mem_capacity_mb"])
        used[h][0] += cpu
        used[h][1] += mem
        vms.append({"name": f"vm{j:05d}", "host": hosts[h]["name"], "vcpus": k[0], "mem_mb": k[1],
                    "cpu_demand_mhz": round(cpu, 1), "mem_demand_mb": round(mem, 1)})
    rules = []
    names = [v["name"] for v in vms]
    for r in range(max(2, n_vms // 200)):
        group = rng.sample(names, 3)
        rules.append({"name": f"apart-{r}", "type": "vm-anti-affinity", "vms": group})
    vm_groups = {"db": rng.sample(names, min(20, n_vms // 10))}
    host_groups = {"rack-a": [h["name"] for h in hosts[: n_hosts // 2]]}
    rules.append({"name": "db-on-rack-a", "type": "vm-host", "vm_group": "db", "host_group": "rack-a",
                  "affine": True, "mandatory": False})
    return {"version": 1, "cluster": f"bench-{n_hosts}x{n_vms}", "hosts": hosts, "vms": vms,
            "vm_groups": vm_groups, "host_groups": host_groups, "rules": rules}


def run(snapshot_path: str, planner: str, budget: int | None, threshold: int) -> dict:
    args = [sys.executable, "-m", "balancer", "recommend", "--snapshot", snapshot_path, "--format", "json",
            "--planner", planner, "--threshold", str(threshold)]
    args += ["--max-moves", str(budget if budget is not None else 10**6)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"{planner} failed: {proc.stderr.strip()}")
    plan = json.loads(proc.stdout)
    im = plan["imbalance"]
    return {
        "wall_s": wall,
        "peak_mib": max(peak_kb, before) / 1024,
        "moves": len(plan["moves"]),
        "before": math.hypot(im["before"]["cpu"], im["before"]["mem"]),
        "after": math.hypot(im["after"]["cpu"], im["after"]["mem"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(f"{h}x{v}" for h, v in SIZES))
    ap.add_argument("--budget-share", type=float, default=0.02, help="move budget as a share of VMs (min 10)")
    ap.add_argument("--threshold", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    header = f"{'size':>10} {'budget':>6} {'planner':>7} {'wall s':>7} {'peak MiB':>8} {'moves':>5} {'before':>7} {'after':>7}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.sizes.split(","):
            n_hosts, n_vms = (int(x) for x in spec.split("x"))
            path = os.path.join(tmp, f"{spec}.json")
            with open(path, "w") as f:
                json.dump(make_cluster(n_hosts, n_vms, args.seed), f)
            budget = max(10, int(n_vms * args.budget_share))
            res = {}
            for planner in ("greedy", "cp-sat"):
                r = res[planner] = run(path, planner, budget, args.threshold)
                print(f"{spec:>10} {budget:>6} {planner:>7} {r['wall_s']:>7.2f} {r['peak_mib']:>8.0f} {r['moves']:>5} "
                      f"{r['before']:>7.4f} {r['after']:>7.4f}")
            ratio = res["cp-sat"]["after"] / max(res["greedy"]["after"], 1e-12)
            print(f"{spec:>10} ratio ours/greedy final imbalance: {ratio:.3f}  "
                  f"wall ours/greedy: {res['cp-sat']['wall_s'] / res['greedy']['wall_s']:.2f}")


if __name__ == "__main__":
    main()
