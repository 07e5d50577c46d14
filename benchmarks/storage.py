"""Storage planner benchmark: ours (engine/storage) against a greedy Storage DRS baseline.

Not a test. Generates a cluster of 32 hosts, 64 datastores (two datastore clusters of 24 that
every host mounts, and 16 standalone datastores each mounted by a quarter of the hosts),
10,000 VMs and 20,000 disks (1-4 per VM, log-normal sizes, half of them thin), skewed so that
some datastores are above the 80 % space threshold, with VMDK anti-affinity and VM anti-affinity
rules. Then, each in a fresh process (Python start-up, reading and validating the snapshot JSON,
planning, writing the plan JSON):

- **ours**: `make_plan` with Storage DRS on (compute at threshold 1: nothing to mend there, so
  the figures are the storage planner's);
- **greedy**: the same pipeline, but the storage moves are the baseline's (engine/storage/baseline.py,
  the heuristic ours is held to): "largest disk off the fullest datastore" — repeatedly, the
  largest unit (a VM's disks on one datastore, kept together as ours does) on the fullest
  datastore in service that fits on another datastore, to the least utilised datastore it may go
  to (same mounts, pools, rules and space threshold as ours) — for exactly as many moves as ours made.

Printed: wall time and CPU time of the whole process (interpreter start-up to exit; CPU time is
what a busy machine cannot inflate), peak memory (the process's maximum resident set), moves, data copied,
max space utilisation after (over the datastores in service), datastores above the threshold,
the ratios ours / greedy, the least data any plan copies to bring the datastores above
the threshold to ours' relief levels, and a lower bound on the data any plan with ours' move count
copies to leave no datastore fuller than the greedy does (`bound_at_moves`): what the target
"at equal moves, max utilisation ≤ the greedy's and data ≤ 0.8 × the greedy's" can ask at best;
over every move count, a lower bound on the data of any plan that meets that target and leaves no
datastore above the threshold (`cheapest_meeting_target`);
and the greedy at ours' data (as many of its moves as copy no more than ours: its max utilisation
then) and at ours' outcome (as many of its moves as it takes to leave the fullest datastore no
fuller than ours: the data it copies for that).

    python benchmarks/storage.py [--seed 1] [--runs 3] [--vms 10000] [--datastores 64] [--relief-margin 0.01]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_cluster(n_vms: int = 10_000, n_ds: int = 64, n_hosts: int = 32, seed: int = 1) -> dict:
    rng = random.Random(seed)
    hosts = [{"name": f"esx{i:03d}", "cpu_capacity_mhz": 2_000_000.0, "mem_capacity_mb": 8_000_000.0}
             for i in range(n_hosts)]
    names = [h["name"] for h in hosts]
    pod_size = (n_ds * 3) // 8  # two pods of 24 at 64 datastores
    stores = []
    for i in range(n_ds):
        ds = {"name": f"ds{i:03d}", "capacity_gb": float(rng.choice([8192, 12288, 16384])), "free_gb": 0.0,
              "latency_ms": round(rng.uniform(1.0, 12.0), 1)}
        if i < 2 * pod_size:
            ds["datastore_cluster"] = "gold" if i < pod_size else "silver"
            ds["hosts"] = list(names)
        else:
            q = (i - 2 * pod_size) % 4
            ds["hosts"] = names[q * n_hosts // 4:(q + 1) * n_hosts // 4]
        stores.append(ds)
    # skew: a datastore's target utilisation; about one in six is pushed above the threshold
    target = [rng.uniform(0.81, 0.90) if rng.random() < 0.17 else rng.uniform(0.45, 0.78) for _ in stores]
    room = {d["name"]: target[i] * d["capacity_gb"] for i, d in enumerate(stores)}
    used = {d["name"]: d["capacity_gb"] * rng.uniform(0.01, 0.04) for d in stores}  # other files
    # disk counts (1-4 per VM, 2 on average) and log-normal sizes, scaled to fill the datastores to their targets
    counts = [rng.choices([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1])[0] for _ in range(n_vms)]
    while sum(counts) != 2 * n_vms:
        j = rng.randrange(n_vms)
        counts[j] = max(1, min(4, counts[j] + (1 if sum(counts) < 2 * n_vms else -1)))
    raw = [[rng.lognormvariate(math.log(40), 1.3) for _ in range(k)] for k in counts]
    # a thin disk takes 30-90 % of its size: 0.8 of the size on average
    scale = (sum(room.values()) - sum(used.values())) / (0.8 * sum(sum(r) for r in raw))
    vms = []
    for j, sizes in enumerate(raw):
        host = names[j % n_hosts]
        reach = [d for d in stores if host in d["hosts"]]
        home = max(reach, key=lambda d: (room[d["name"]] - used[d["name"]]) * rng.random())
        disks = []
        for n, x in enumerate(sizes):
            size = float(min(4096.0, max(1.0, round(x * scale))))
            thin = rng.random() < 0.5
            space = round(size * rng.uniform(0.3, 0.9), 1) if thin else size
            ds = home if rng.random() < 0.9 else rng.choice(reach)
            if used[ds["name"]] + space > ds["capacity_gb"] * 0.99:
                ds = min(reach, key=lambda d: used[d["name"]] / d["capacity_gb"])
            used[ds["name"]] += space
            disk = {"name": f"Hard disk {n + 1}", "datastore": ds["name"], "size_gb": size, "thin": thin}
            if thin:
                disk["used_gb"] = space
            disks.append(disk)
        vms.append({"name": f"vm{j:05d}", "host": host, "vcpus": 2, "mem_mb": 4096.0,
                    "cpu_demand_mhz": 500.0, "mem_demand_mb": 1500.0, "disks": disks})
    for d in stores:
        d["free_gb"] = round(max(d["capacity_gb"] - used[d["name"]], 0.0), 3)
    # rules that hold at the start (as in benchmarks/optimizer.py's clean start): neither planner spends moves mending
    rules = []
    multi = [v for v in vms if len({k["datastore"] for k in v["disks"]}) == len(v["disks"]) >= 2]
    for i, v in enumerate(rng.sample(multi, min(50, len(multi)))):
        rules.append({"name": f"vmdk-apart-{i}", "type": "vmdk-anti-affinity", "vm": v["name"],
                      "disks": [k["name"] for k in v["disks"]]})
    while len(rules) < 100:
        a, b = rng.sample(vms, 2)
        if not {k["datastore"] for k in a["disks"]} & {k["datastore"] for k in b["disks"]}:
            rules.append({"name": f"vms-apart-{len(rules)}", "type": "vm-datastore-anti-affinity",
                          "vms": [a["name"], b["name"]]})
    return {"version": 2, "cluster": "bench", "hosts": hosts, "vms": vms, "datastores": stores, "rules": rules}


def greedy_steps(snapshot, storage, n_moves: int, min_difference: bool = True):
    """The baseline (engine/storage/baseline.py): the largest unit off the fullest datastore, to the
    least utilised one it may go to (``min_difference``: one at least min_space_difference less
    utilised than the source, as ours)."""
    from balancer.engine.storage.baseline import largest_first
    from balancer.engine.storage.layout import Choice, Layout
    from balancer.engine.storage.pool import build_pool
    from balancer.engine.storage.rules import build_rules

    pool = build_pool(snapshot)
    lay = Layout(pool, build_rules(pool, storage.keep_disks_together), storage)
    largest_first(lay, n_moves, min_difference)
    return pool, Choice(steps=lay.steps, disk_ds=lay.disk_ds, used=lay.used)


def least_data(path_data: dict, relief_margin: float) -> float:
    """The data any plan must copy to bring every datastore in service to its relief level at the start."""
    if ROOT not in sys.path:  # this checkout's package, as the child processes get it
        sys.path.insert(0, ROOT)
    from balancer.engine.options import StorageOptions
    from balancer.engine.storage.layout import Layout
    from balancer.engine.storage.pool import build_pool
    from balancer.engine.storage.rules import build_rules
    from balancer.engine.storage.select import relief_levels
    from balancer.snapshot import parse_snapshot

    storage = StorageOptions(relief_margin=relief_margin)
    pool = build_pool(parse_snapshot(path_data))
    lay = Layout(pool, build_rules(pool, storage.keep_disks_together), storage)
    excess = pool.used - relief_levels(lay) * pool.cap
    return float(excess[(excess > 0) & (pool.used > lay.ceiling) & ~pool.leaving].sum())


def cover_costs(sizes: list[float], excess: float, most: int) -> list[float]:
    """For c = 0..most: the least data c or fewer of the units ``sizes`` copy to take at least
    ``excess`` GB off their datastore (inf: none do). Exact over whole GB with each size rounded up and
    the excess rounded down, so never above the true least (a lower bound)."""
    import numpy as np

    if excess <= 0:
        return [0.0] * (most + 1)
    need = int(math.floor(excess))
    best = np.full((most + 1, need + 1), np.inf)  # [units, GB reached (capped at need)] -> least data
    best[0, 0] = 0.0
    for x in sorted(sizes, reverse=True):
        step = min(int(math.ceil(x)), need)
        for c in range(most, 0, -1):
            prev = best[c - 1]
            moved = np.full(need + 1, np.inf)
            moved[step:need] = prev[:need - step] + x
            moved[need] = prev[need - step:].min() + x
            best[c] = np.minimum(best[c], moved)
    return np.minimum.accumulate(best[:, need]).tolist()


def greedy_path(path_data: dict, relief_margin: float, most: int):
    """The greedy's first ``most`` moves from the start, one at a time: (pool, the start layout, the
    fullest datastore in service after 0, 1, ... moves, the data copied after 0, 1, ... moves)."""
    if ROOT not in sys.path:  # this checkout's package, as the child processes get it
        sys.path.insert(0, ROOT)
    from balancer.engine.options import StorageOptions
    from balancer.engine.storage.baseline import largest_first
    from balancer.engine.storage.layout import Layout
    from balancer.engine.storage.pool import build_pool
    from balancer.engine.storage.rules import build_rules
    from balancer.snapshot import parse_snapshot

    storage = StorageOptions(relief_margin=relief_margin)
    pool = build_pool(parse_snapshot(path_data))
    start = Layout(pool, build_rules(pool, storage.keep_disks_together), storage)
    lay = Layout(pool, start.rules, storage)
    reached = largest_first(lay, most)
    copied = [0.0]
    for st in lay.steps:
        copied.append(copied[-1] + st.size_gb)
    return pool, start, reached, copied


def bound_at_moves(pool, start, level: float, n_moves: int) -> float:
    """A lower bound on the data any plan of at most ``n_moves`` moves copies to leave every
    datastore in service at or below ``level``. The bound drops where the data goes (targets,
    mounts, rules, the minimum difference): only which units leave each datastore too full, and
    how many."""
    from balancer.engine.storage.layout import units_on

    units = start.rules.units
    total = [0.0] + [math.inf] * n_moves  # least data with exactly c moves over the datastores so far
    for d in range(pool.n_datastores):
        excess = float(pool.used[d] - level * pool.cap[d])
        if pool.leaving[d] or excess <= 1e-9:
            continue
        costs = cover_costs([float(pool.disk_space[units[u].disks].sum()) for u in units_on(start, d)],
                            excess, n_moves)
        total = [min(total[a] + costs[c - a] for a in range(c + 1)) for c in range(n_moves + 1)]
    return min(total)


def cheapest_meeting_target(pool, start, reached, copied, threshold: float, ratio: float = 0.8):
    """The least data any plan that meets the target and does the job can copy: over every move
    count k the greedy's path reaches, a plan of k moves that leaves no datastore in service above
    the greedy's level after k moves nor above ``threshold``, copying at most ``ratio`` x the
    greedy's data at k. Returns (k, lower bound on its data) for the k with the smallest bound, or
    None when no k admits such a plan. The scan stops once the excess above the level alone (what
    any number of moves must copy, and it only grows as the level falls) reaches the best found."""
    best = None
    for k in range(1, len(reached)):
        level = min(reached[k], threshold)
        excess = float(sum(max(0.0, float(pool.used[d] - level * pool.cap[d]))
                           for d in range(pool.n_datastores) if not pool.leaving[d]))
        if best is not None and excess >= best[1]:
            break
        bound = bound_at_moves(pool, start, level, k)
        if bound <= ratio * copied[k] and (best is None or bound < best[1]):
            best = (k, bound)
    return best


def child(path: str, mode: str, n_moves: int, relief_margin: float) -> None:
    """One end-to-end run in this process: read the snapshot, plan, write the plan; print figures."""
    start = time.perf_counter()
    from balancer.engine import PlanOptions, make_plan
    from balancer.engine.options import StorageOptions
    from balancer.plan import plan_json
    from balancer.snapshot import load_snapshot

    imported = time.perf_counter()
    snapshot = load_snapshot(path)
    loaded = time.perf_counter()
    storage = StorageOptions(relief_margin=relief_margin)
    options = PlanOptions(threshold=1, storage=storage)
    if mode == "ours":
        plan = make_plan(snapshot, options)
    else:
        from balancer.engine.compute import plan_compute
        from balancer.engine.storage.planner import _datastores, _storage_moves

        plan = plan_compute(snapshot, options)
        pool, choice = greedy_steps(snapshot, storage, n_moves, min_difference=mode == "greedy")
        plan = plan.model_copy(update={"storage_moves": _storage_moves(pool, storage, choice, 1),
                                       "datastores": _datastores(pool, choice.used)})
    planned = time.perf_counter()
    text = plan_json(plan)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    in_service = [d for d in plan.datastores if d.state == "normal"]
    print(json.dumps({
        "wall": wall, "peak_mib": peak, "import_s": imported - start, "read_s": loaded - imported,
        "plan_s": planned - loaded, "moves": len(plan.storage_moves),
        "copied_gb": sum(m.storage_vmotion.data_gb for m in plan.storage_moves),
        "max_before": max(d.utilisation_before for d in in_service),
        "max_after": max(d.utilisation_after for d in in_service),
        "over_before": sum(d.utilisation_before > storage.space_threshold for d in in_service),
        "over_after": sum(d.utilisation_after > storage.space_threshold for d in in_service),
        "bytes": len(text),
    }))


def run(path: str, mode: str, n_moves: int = 0, relief_margin: float = 0.01) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, __file__, "--child", path, "--mode", mode, "--moves", str(n_moves),
                          "--relief-margin", str(relief_margin)],
                         capture_output=True, text=True, env=env, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["wall"] = time.perf_counter() - start  # the whole process: interpreter start-up to exit
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row["cpu"] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime  # the same, CPU time
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--datastores", type=int, default=64)
    ap.add_argument("--child")
    ap.add_argument("--mode", default="ours")
    ap.add_argument("--moves", type=int, default=0)
    ap.add_argument("--relief-margin", type=float, default=0.01, help="StorageOptions.relief_margin")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.mode, a.moves, a.relief_margin)
        return
    data = make_cluster(a.vms, a.datastores, seed=a.seed)
    n_disks = sum(len(v["disks"]) for v in data["vms"])
    print(f"# {platform.machine()} {platform.processor() or ''} nproc {os.cpu_count()}, Python {platform.python_version()}; "
          f"{len(data['hosts'])} hosts, {len(data['datastores'])} datastores, {len(data['vms'])} VMs, {n_disks} disks, "
          f"seed {a.seed}, median of {a.runs} runs")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
        path = f.name
    try:
        ours = [run(path, "ours", 0, a.relief_margin) for _ in range(a.runs)]
        k = ours[0]["moves"]
        greedy = [run(path, "greedy", k, a.relief_margin) for _ in range(a.runs)]
        loose = [run(path, "greedy-loose", k, a.relief_margin)]
    finally:
        os.unlink(path)

    def median(rows, key):
        return sorted(r[key] for r in rows)[len(rows) // 2]

    print("| planner | wall s | CPU s | peak MiB | moves | copied GB | max util before | max util after | above 80 % before → after |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in (("greedy", greedy), ("greedy, no min. difference", loose), ("ours", ours)):
        r = rows[0]
        print(f"| {name} | {median(rows, 'wall'):.2f} | {median(rows, 'cpu'):.2f} | {median(rows, 'peak_mib'):.0f} | {r['moves']} | "
              f"{r['copied_gb']:,.0f} | {100 * r['max_before']:.1f} % | {100 * r['max_after']:.1f} % | "
              f"{r['over_before']} → {r['over_after']} |")
    o = ours[0]
    print()
    floor = least_data(path_data=data, relief_margin=a.relief_margin)
    print(f"least data any plan copies to bring every datastore to ours' relief levels (the excess above them): "
          f"{floor:,.0f} GB = {floor / max(greedy[0]['copied_gb'], 1e-9):.3f} x greedy's")
    pool, start, reached, copied = greedy_path(data, a.relief_margin, 4 * k + 50)
    from balancer.engine.options import StorageOptions
    level = reached[min(k, len(reached) - 1)]
    bound = bound_at_moves(pool, start, level, k)
    print(f"least data any plan of {k} moves copies to leave no datastore above the greedy's {100 * level:.2f} % "
          f"(a lower bound): {bound:,.0f} GB = {bound / max(greedy[0]['copied_gb'], 1e-9):.3f} x greedy's; "
          f"ours copies {o['copied_gb'] / max(bound, 1e-9):.3f} x this bound")
    meeting = cheapest_meeting_target(pool, start, reached, copied, StorageOptions(relief_margin=a.relief_margin).space_threshold)
    if meeting is None:
        print(f"no plan of 1 to {len(reached) - 1} moves meets the target and leaves no datastore above the threshold")
    else:
        print(f"least data any plan copies that meets the target at its move count and leaves no datastore above "
              f"the threshold (a lower bound): {meeting[1]:,.0f} GB at {meeting[0]} moves; ours {o['copied_gb']:,.0f} GB "
              f"at {k} moves ({o['copied_gb'] / max(meeting[1], 1e-9):.3f} x)")
    within = max(j for j in range(len(copied)) if copied[j] <= o["copied_gb"] + 1e-6)
    print(f"greedy at ours' data (its first {within} moves, {copied[within]:,.0f} GB): max utilisation after "
          f"{100 * reached[within]:.1f} %; ours {100 * o['max_after']:.1f} % (ratio {o['max_after'] / reached[within]:.3f})")
    same = next((j for j in range(len(reached)) if reached[j] <= o["max_after"] + 1e-9), None)
    if same is None:
        print(f"greedy at ours' max utilisation: it never gets as low as {100 * o['max_after']:.1f} %")
    else:
        print(f"greedy at ours' max utilisation ({100 * o['max_after']:.1f} %): {same} moves, {copied[same]:,.0f} GB; "
              f"ours {k} moves, {o['copied_gb']:,.0f} GB (data ratio {o['copied_gb'] / max(copied[same], 1e-9):.3f})")
    for name, g in (("greedy", greedy[0]), ("greedy, no min. difference", loose[0])):
        print(f"ours / {name} at {k} moves each: max utilisation after {o['max_after'] / g['max_after']:.3f}, "
              f"data copied {o['copied_gb'] / max(g['copied_gb'], 1e-9):.3f}")
    print(f"ours' wall time {median(ours, 'wall'):.2f} s, CPU time {median(ours, 'cpu'):.2f} s (median of {a.runs}; in the wall time: imports {median(ours, 'import_s'):.2f} s, "
          f"reading the snapshot {median(ours, 'read_s'):.2f} s, planning {median(ours, 'plan_s'):.2f} s), "
          f"peak {median(ours, 'peak_mib'):.0f} MiB")


if __name__ == "__main__":
    main()
