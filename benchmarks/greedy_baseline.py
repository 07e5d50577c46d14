"""A plain DRS-style greedy hill climb, written with numpy only, run as its own process: the baseline the
planning-speed targets are measured against (docs/benchmarks.md, "Against a plain greedy baseline").

Not the project's code: it reads a snapshot JSON, and while the move budget lasts and the best single move
lowers Σ over hosts of (CPU utilisation − mean)² + (memory utilisation − mean)² by at least ``--min-gain``,
it makes that move (every VM against every host, one matrix per step), within capacity minus 10 %
headroom and keeping the mandatory anti-affinity rules apart. It prints one JSON line: moves, the final
imbalance (population std-dev per resource), and its own CPU time.

    python benchmarks/greedy_baseline.py SNAPSHOT.json --max-moves 200 [--min-gain 0.0002]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("--max-moves", type=int, default=200)
    ap.add_argument("--min-gain", type=float, default=0.0002)  # DRS's MinGoodness at threshold 5
    ap.add_argument("--headroom", type=float, default=0.10)
    args = ap.parse_args()
    snap = json.load(open(args.snapshot))
    hosts = snap["hosts"]
    h_idx = {h["name"]: i for i, h in enumerate(hosts)}
    cap = np.array([[h["cpu_capacity_mhz"], h["mem_capacity_mb"]] for h in hosts], dtype=float)
    vms = [v for v in snap["vms"] if v.get("powered_on", True)]
    load = np.array([[v["cpu_demand_mhz"], v["mem_demand_mb"]] for v in vms], dtype=float)
    place = np.array([h_idx[v["host"]] for v in vms])
    v_idx = {v["name"]: i for i, v in enumerate(vms)}
    apart = [np.array([v_idx[n] for n in r["vms"] if n in v_idx]) for r in snap.get("rules", [])
             if r.get("type") == "vm-anti-affinity" and r.get("mandatory", True)]
    partners: dict[int, list[np.ndarray]] = {}
    for g in apart:
        for v in g:
            partners.setdefault(int(v), []).append(g[g != v])
    limit = cap * (1 - args.headroom)
    H = len(hosts)
    loads = np.zeros((H, 2))
    np.add.at(loads, place, load)
    w = 1.0 / cap
    moves = 0
    while moves < args.max_moves:
        u = loads * w
        mean = u.mean(axis=0)
        n = H
        # change of Σ (u − mean)² when VM v moves from s to d, per resource with f = load / capacity:
        # fd (fd + 2 u_d) + fs (fs − 2 u_s) − n (2 mean dm + dm²), dm = (fd − fs) / n; expanded, a (V, 6)
        # by (6, H) matrix product plus a term of the VM alone (the same algebra as any DRS climb)
        fs = load * w[place]  # (V, 2) share leaving its host
        us = u[place]
        left = np.concatenate([load * load * (1 - 1 / n), load * 2, load * 2 * fs / n - 2 * mean * load], axis=1)
        right = np.concatenate([w * w, w * u, w], axis=1).T  # (6, H)
        const = (fs * (fs - 2 * us) + 2 * mean * fs - fs * fs / n).sum(axis=1)
        delta = left @ right + const[:, None]  # (V, H)
        ok = np.all(loads[None, :, :] + load[:, None, :] <= limit[None, :, :] + 1e-6, axis=2)
        ok[np.arange(len(vms)), place] = False
        for v, ps in partners.items():
            for p in ps:
                ok[v, place[p]] = False
        gain = np.where(ok, -delta, -np.inf)
        i = int(np.argmax(gain))
        v, h = divmod(i, H)
        if not gain[v, h] >= args.min_gain:
            break
        loads[place[v]] -= load[v]
        loads[h] += load[v]
        place[v] = h
        moves += 1
    u = loads * w
    std = u.std(axis=0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"moves": moves, "cpu": round(float(std[0]), 6), "mem": round(float(std[1]), 6),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "peak_mib": round(usage.ru_maxrss / 1024, 1)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
