"""Predictive vs reactive balancing over trace days (docs/evaluation.md, "Predictive balancing").

Not a test. For each day, full-day replays (`balancer.whatif.replay`, one after the other) of
the optimiser reactive (`drs.predictive` off: recent demand only) and predictive (on: max of the
recent demand and each VM's forecast for the next hour), without and with DPM. The predictive
runs' daily profiles get their past from the packaged days before the replayed one, matched by
PlanetLab VM id (`balancer simulate --history`). Prints a Markdown table per day and the sums.

    python benchmarks/predictive.py --days march --hosts 30 --seed 3
    python benchmarks/predictive.py --days april --hosts 30 --seed 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balancer.whatif import ReplaySpec, replay  # noqa: E402
from balancer.sources.sim.traces import packaged_days  # noqa: E402

DAYS = {  # the first packaged day has no day before it: no profile, nothing to compare
    "march": ["20110306", "20110309", "20110322", "20110325"],
    "april": ["20110403", "20110409", "20110411", "20110412", "20110420"],
}
FIELDS = ["overload_minutes", "hot_minutes", "migrations", "imbalance_mean", "host_hours"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", default="march")
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dpm", choices=["off", "on", "both"], default="both")
    ap.add_argument("--json", help="also write every run's numbers here")
    args = ap.parse_args()
    days = DAYS.get(args.days) or args.days.split(",")
    dpms = {"off": [False], "on": [True], "both": [False, True]}[args.dpm]
    runs = []
    for day in days:
        history = tuple(d for d in packaged_days() if d < day)
        for dpm in dpms:
            for predictive in (False, True):
                r = replay(ReplaySpec(trace=day, hosts=args.hosts, seed=args.seed, dpm=dpm, predictive=predictive,
                                      history=history if predictive else ())).to_json_dict()
                runs.append(r)
                print(f"{day} dpm={'on' if dpm else 'off'} predictive={'on' if predictive else 'off'}: "
                      + ", ".join(f"{k}={r[k]}" for k in FIELDS)
                      + f", history_vms={r['scenario'].get('history_vms')}, wall={r['wall_seconds']}s",
                      file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    print(f"{args.hosts} hosts, seed {args.seed}, one VM per trace row, a cycle every 5 minutes\n")
    print("| day | DPM | VMs with a past | overload reactive / predictive | hot | migrations | mean imbalance | host-hours |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    sums: dict = {}
    for i in range(0, len(runs), 2):
        a, b = runs[i], runs[i + 1]
        s = a["scenario"]
        key = s["dpm"]
        tot = sums.setdefault(key, {f: [0.0, 0.0] for f in FIELDS})
        for f in FIELDS:
            tot[f][0] += a[f]
            tot[f][1] += b[f]
        print(f"| {s['trace']} | {s['dpm']} | {b['scenario'].get('history_vms', 0)} of {s['vms']} | "
              f"{a['overload_minutes']:g} / {b['overload_minutes']:g} | {a['hot_minutes']:g} / {b['hot_minutes']:g} | "
              f"{a['migrations']} / {b['migrations']} | {a['imbalance_mean']:.3f} / {b['imbalance_mean']:.3f} | "
              f"{a['host_hours']:g} / {b['host_hours']:g} |")
    for key, tot in sums.items():
        print(f"| **all** | {key} | | {tot['overload_minutes'][0]:g} / {tot['overload_minutes'][1]:g} | "
              f"{tot['hot_minutes'][0]:g} / {tot['hot_minutes'][1]:g} | {tot['migrations'][0]:g} / "
              f"{tot['migrations'][1]:g} | | {tot['host_hours'][0]:g} / {tot['host_hours'][1]:g} |")


if __name__ == "__main__":
    main()
