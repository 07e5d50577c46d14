"""Optimiser benchmark: ours (CP-SAT repairs + move-budget-aware local search) against the DRS-style
greedy hill-climb.

Not a test. Generates clusters of 16/200, 32/1,500, 64/5,000 and 96/10,000 hosts/VMs with
heterogeneous hosts, rules and a skewed start. For each size, three measurements:

1. **budget**: both planners at the same move budget (2 % and 5 % of the VMs, at least 10), end to end
   in a fresh process (`balancer recommend --snapshot S --format json`): wall and CPU time, peak
   memory, moves, imbalance before/after, the data vMotion copies (the plan's `totals`), rules
   broken after, the ratios ours/greedy of final imbalance and of data copied.
2. **unlimited**: the same with no move budget: each planner stops when no move pays for
   itself (the threshold's minimum gain plus the vMotion price).
3. **fluid**: ours with no budget and free moves (minimum gain 0, no vMotion price), in
   process, against the fluid bound: the least imbalance any placement could have if VM load
   could be split freely over the hosts that are on, within capacity minus headroom.

    python benchmarks/optimizer.py [--sizes 16x200,32x1500] [--budget-share 0.02,0.05] [--seed 1]
                                   [--start clean|broken] [--runs 3] [--modes budget,unlimited,fluid]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

SIZES = [(16, 200), (32, 1500), (64, 5000), (96, 10000)]
HOST_KINDS = [(76800, 524288), (57600, 393216), (115200, 1048576), (44800, 262144)]
VM_KINDS = [(2, 4096, 0.4), (4, 16384, 0.35), (8, 32768, 0.2), (16, 65536, 0.05)]


def make_cluster(n_hosts: int, n_vms: int, seed: int, clean: bool = True) -> dict:
    """A skewed cluster with rules. ``clean``: every rule holds at the start (the anti-affinity
    groups already run apart, the should-rule's VMs already run in its host group), so neither
    planner has to spend moves mending; otherwise the rules are drawn blind and some start broken."""
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
        # configured memory covers the demand (small clusters need bigger VMs to reach 60 %)
        mem_mb = max(k[1], 2 ** math.ceil(math.log2(mem / 0.85)))
        vms.append({"name": f"vm{j:05d}", "host": hosts[h]["name"], "vcpus": k[0], "mem_mb": mem_mb,
                    "cpu_demand_mhz": round(cpu, 1), "mem_demand_mb": round(mem, 1)})
    vm_host = {v["name"]: v["host"] for v in vms}
    rules = []
    names = [v["name"] for v in vms]
    rack_a = {h["name"] for h in hosts[: n_hosts // 2]}
    taken: set[str] = set()
    for r in range(max(2, n_vms // 200)):
        group = rng.sample(names, 3)
        while clean and (len({vm_host[n] for n in group}) < 3 or taken.intersection(group)):
            group = rng.sample(names, 3)  # a clean start: the three already run apart
        taken.update(group)
        rules.append({"name": f"apart-{r}", "type": "vm-anti-affinity", "vms": group})
    db_pool = [n for n in names if vm_host[n] in rack_a and n not in taken] if clean else names
    vm_groups = {"db": rng.sample(db_pool, min(20, n_vms // 10))}
    host_groups = {"rack-a": sorted(rack_a)}
    rules.append({"name": "db-on-rack-a", "type": "vm-host", "vm_group": "db", "host_group": "rack-a",
                  "affine": True, "mandatory": False})
    return {"version": 1, "cluster": f"bench-{n_hosts}x{n_vms}", "hosts": hosts, "vms": vms,
            "vm_groups": vm_groups, "host_groups": host_groups, "rules": rules}


def run(snapshot_path: str, planner: str, budget: int | None, threshold: int, time_limit: float | None) -> dict:
    """One planner end to end in a fresh process: wall time, its own peak memory, the plan's figures."""
    args = [sys.executable, "-m", "balancer", "recommend", "--snapshot", snapshot_path, "--format", "json",
            "--planner", planner, "--threshold", str(threshold)]
    args += ["--max-moves", str(budget if budget is not None else 10**6)]
    if time_limit is not None:
        args += ["--time-limit", str(time_limit)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{planner} failed: {err.read().strip()}")
        plan = json.load(out)
    # CPU time (user + system) besides wall time: on a busy machine it is what the plan itself cost
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024,
            **figures(plan)}


def figures(plan: dict) -> dict:
    im = plan["imbalance"]
    broken = plan["violations_after"]
    return {
        "moves": len(plan["moves"]),
        "before": math.hypot(im["before"]["cpu"], im["before"]["mem"]),
        "after": math.hypot(im["after"]["cpu"], im["after"]["mem"]),
        "data_gb": plan.get("totals", {}).get("data_mb", 0.0) / 1024,  # vMotion data copied, predicted
        "vmotion_s": plan.get("totals", {}).get("vmotion_seconds", 0.0),
        "mandatory_after": sum(1 for v in broken if v.get("mandatory", True)),
        "should_after": sum(1 for v in broken if not v.get("mandatory", True)),
    }


def fluid_bound(snapshot: dict, headroom: float = 0.10) -> float:
    """Least combined imbalance if the movable VMs' load could be split freely over the hosts that are on.

    Per resource: minimise Σ_h (u_h − m)² over the utilisations u_h and the mean m, with u_h
    between what unmovable VMs pin on h and capacity minus headroom, and the total load fixed.
    For fixed m the optimum is u_h = clip(m + μ c_h, lo_h, hi_h) with μ set by the total
    (bisection); the outer problem is convex in m (golden-section search). Rules are ignored,
    so this is a lower bound.
    """
    from balancer.engine import PlanOptions
    from balancer.engine.compute.cluster import build_cluster
    from balancer.snapshot import parse_snapshot

    c = build_cluster(parse_snapshot(snapshot), PlanOptions(cpu_headroom=headroom, mem_headroom=headroom))
    on = c.on
    total = 0.0
    for r in (0, 1):
        cap = c.cap[on, r]
        pinned = ~c.movable & c.powered
        fixed = np.zeros(c.n_hosts)
        np.add.at(fixed, c.place[pinned], c.load[pinned, r])
        lo = fixed[on] / cap
        hi = np.maximum(c.limit[on, r], fixed[on]) / cap
        load = c.load[c.powered, r].sum()

        def spread(m: float) -> np.ndarray:
            a, b = -10.0, 10.0  # μ: Σ cap·clip(m + μ·cap) is increasing in μ
            for _ in range(100):
                mu = (a + b) / 2
                if (cap * np.clip(m + mu * cap / cap.mean(), lo, hi)).sum() < load:
                    a = mu
                else:
                    b = mu
            return np.clip(m + (a + b) / 2 * cap / cap.mean(), lo, hi)

        def cost(m: float) -> float:
            u = spread(m)
            return float(((u - u.mean()) ** 2).sum())

        a, b = float(lo.min()), float(hi.max())
        g = (math.sqrt(5) - 1) / 2
        for _ in range(80):
            m1, m2 = b - g * (b - a), a + g * (b - a)
            if cost(m1) <= cost(m2):
                b = m2
            else:
                a = m1
        total += cost((a + b) / 2) / on.sum()
    return math.sqrt(total)


def fluid_run(snapshot: dict, threshold: int, time_limit: float) -> dict:
    """Ours in process with no budget and free moves: how close it gets to the fluid bound."""
    from balancer.engine import PlanOptions, make_plan
    from balancer.snapshot import parse_snapshot

    options = PlanOptions(threshold=threshold, max_moves=None, min_gain=0.0, cost_per_vmotion_second=0.0,
                          time_limit_s=time_limit)
    t = time.perf_counter()
    plan = make_plan(parse_snapshot(snapshot), options)
    return {"wall_s": time.perf_counter() - t, **figures(plan.to_json_dict())}


def median_run(runs: int, *args) -> dict:
    results = [run(*args) for _ in range(runs)]
    results.sort(key=lambda r: r["wall_s"])  # the median by wall time (its CPU time with it)
    out = dict(results[len(results) // 2])
    out["walls"] = [r["wall_s"] for r in results]
    return out


def summary(results: list[dict]) -> None:
    """Per size and budget: final imbalance and data copied, ours and the greedy's, and the ratios."""
    pairs: dict[tuple, dict] = {}
    for r in results:
        if r["mode"] in ("budget", "unlimited"):
            pairs.setdefault((r["size"], r["mode"], r["budget"]), {})[r["planner"]] = r
    if not pairs:
        return
    print()
    print(f"{'size':>10} {'budget':>7} {'greedy after':>12} {'ours after':>10} {'ours/greedy':>11} "
          f"{'greedy GB':>9} {'ours GB':>8} {'data ratio':>10}")
    for (size, mode, budget), p in pairs.items():
        if len(p) < 2:
            continue
        g, o = p["greedy"], p["cp-sat"]
        print(f"{size:>10} {budget if budget else 'none':>7} {g['after']:>12.4f} {o['after']:>10.4f} "
              f"{o['ratio']:>11.3f} {g['data_gb']:>9.0f} {o['data_gb']:>8.0f} {o['data_ratio']:>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(f"{h}x{v}" for h, v in SIZES))
    ap.add_argument("--budget-share", default="0.02,0.05",
                    help="move budgets as shares of the VMs (at least 10 moves), comma-separated")
    ap.add_argument("--threshold", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", choices=["clean", "broken"], default="clean",
                    help="clean: every rule holds at the start; broken: rules drawn blind, some broken")
    ap.add_argument("--runs", type=int, default=1, help="runs per planner (the median wall time is shown)")
    ap.add_argument("--modes", default="budget,unlimited,fluid")
    ap.add_argument("--unlimited-time-limit", type=float, default=10.0,
                    help="solver time limit of the unlimited and fluid runs, seconds")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    modes = args.modes.split(",")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"threshold {args.threshold}, {args.start} start")
    print(f"{'size':>10} {'mode':>9} {'budget':>7} {'planner':>7} {'wall s':>7} {'cpu s':>6} {'peak MiB':>8} {'moves':>6} "
          f"{'before':>7} {'after':>7} {'data GB':>8} {'broken m/s':>10} {'ours/greedy':>11} {'data ratio':>10}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.sizes.split(","):
            n_hosts, n_vms = (int(x) for x in spec.split("x"))
            snapshot = make_cluster(n_hosts, n_vms, args.seed, clean=args.start == "clean")
            path = os.path.join(tmp, f"{spec}.json")
            with open(path, "w") as f:
                json.dump(snapshot, f)
            budgets = sorted({max(10, int(n_vms * float(x))) for x in args.budget_share.split(",")})
            runs = [(m, b) for m in modes for b in (budgets if m == "budget" else [None])]
            for mode, budget in runs:
                if mode == "fluid":
                    r = fluid_run(snapshot, args.threshold, args.unlimited_time_limit)
                    bound = fluid_bound(snapshot)
                    r.update(size=spec, mode=mode, planner="cp-sat", budget=None, bound=bound)
                    results.append(r)
                    print(f"{spec:>10} {mode:>9} {'none':>7} {'cp-sat':>7} {r['wall_s']:>7.2f} {'':>6} {'':>8} {r['moves']:>6} "
                          f"{r['before']:>7.4f} {r['after']:>7.4f} {r['data_gb']:>8.0f} "
                          f"{r['mandatory_after']:>5}/{r['should_after']:<4} "
                          f"fluid bound {bound:.4f}, gap {r['after'] - bound:.4f}")
                    continue
                limit = None if mode == "budget" else args.unlimited_time_limit
                res = {}
                for planner in ("greedy", "cp-sat"):
                    r = res[planner] = median_run(args.runs, path, planner, budget, args.threshold, limit)
                    r.update(size=spec, mode=mode, planner=planner, budget=budget)
                    results.append(r)
                ratio = res["cp-sat"]["after"] / max(res["greedy"]["after"], 1e-12)
                data_ratio = res["cp-sat"]["data_gb"] / max(res["greedy"]["data_gb"], 1e-12)
                res["cp-sat"]["ratio"] = ratio
                res["cp-sat"]["data_ratio"] = data_ratio
                for planner, r in res.items():
                    tail = f"{ratio:>11.3f} {data_ratio:>10.3f}" if planner == "cp-sat" else ""
                    print(f"{spec:>10} {mode:>9} {budget if budget else 'none':>7} {planner:>7} {r['wall_s']:>7.2f} "
                          f"{r['cpu_s']:>6.2f} {r['peak_mib']:>8.0f} {r['moves']:>6} {r['before']:>7.4f} {r['after']:>7.4f} "
                          f"{r['data_gb']:>8.0f} {r['mandatory_after']:>5}/{r['should_after']:<4} {tail}")
    summary(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
