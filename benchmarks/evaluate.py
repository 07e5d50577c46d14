"""Evaluation over trace days: no balancing vs the greedy baseline vs ours, with and without DPM.

Not a test. For each day, five full-day replays (`balancer.whatif.replay`, run one after the
other): none, greedy, ours, greedy + DPM, ours + DPM, on the default replay cluster (40 hosts,
one VM per trace row, seed 1, a cycle every 5 minutes). Prints Markdown: the metrics per day and
run, then the targets per day and over all the days (sums). docs/evaluation.md shows the output.

    python benchmarks/evaluate.py --days march            # the days tuned on
    python benchmarks/evaluate.py --days april            # held out
    python benchmarks/evaluate.py --days 20110303,20110306 [--hosts 40] [--seed 1] [--threshold 3] [--json runs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balancer.whatif import ReplaySpec, replay  # noqa: E402

DAYS = {
    "march": ["20110303", "20110306", "20110309", "20110322", "20110325"],
    "april": ["20110403", "20110409", "20110411", "20110412", "20110420"],
}
RUNS = [("none", False), ("greedy", False), ("ours", False), ("greedy", True), ("ours", True)]


def label(policy: str, dpm: bool) -> str:
    return policy + (" + DPM" if dpm else "")


def ratio(a: float, b: float) -> str:
    return "—" if b == 0 else f"{a / b:.2f}"


def check(ok: bool) -> str:
    return "yes" if ok else "**no**"


def targets(r: dict) -> dict:
    """The issue's targets for one day (or the sums over days) of the five runs."""
    none, greedy, ours = r[("none", False)], r[("greedy", False)], r[("ours", False)]
    greedy_dpm, ours_dpm = r[("greedy", True)], r[("ours", True)]
    return {
        "overload ours / none": ratio(ours["overload_minutes"], none["overload_minutes"]),
        "≤ 0.3 × none": check(ours["overload_minutes"] <= 0.3 * none["overload_minutes"])
                         if none["overload_minutes"] else "n/a (none: 0)",
        "≤ greedy": check(ours["overload_minutes"] <= greedy["overload_minutes"]
                          and ours_dpm["overload_minutes"] <= greedy_dpm["overload_minutes"]),
        "migrations ours / greedy": f"{ratio(ours['migrations'], greedy['migrations'])} / "
                                    f"{ratio(ours_dpm['migrations'], greedy_dpm['migrations'])}",
        "≤ 0.7 × greedy": check(ours["migrations"] <= 0.7 * greedy["migrations"]
                                and ours_dpm["migrations"] <= 0.7 * greedy_dpm["migrations"]),
        "host-hours DPM / on": ratio(ours_dpm["host_hours"], ours["host_hours"]),
        "≥ 25 % fewer": check(ours_dpm["host_hours"] <= 0.75 * ours["host_hours"]),
        "overload DPM vs on": f"{ours_dpm['overload_minutes']:.0f} vs {ours['overload_minutes']:.0f}",
        "no more": check(ours_dpm["overload_minutes"] <= ours["overload_minutes"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", default="march", help="march, april, or comma-separated YYYYMMDD days / trace paths")
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threshold", type=int, help="migration threshold (default: the service's, 3)")
    ap.add_argument("--steps", type=int, help="replay only this many samples of each day (a quick check)")
    ap.add_argument("--json", help="also write every run's JSON to this file")
    args = ap.parse_args()
    days = DAYS.get(args.days, args.days.split(","))
    results: dict[str, dict] = {}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.hosts} hosts, seed {args.seed}, threshold {args.threshold or 'default'}\n", file=sys.stderr)
    for day in days:
        results[day] = {}
        for policy, dpm in RUNS:
            r = replay(ReplaySpec(trace=day, hosts=args.hosts, policy=policy, dpm=dpm, seed=args.seed,
                                  steps=args.steps, threshold=args.threshold)).to_json_dict()
            results[day][(policy, dpm)] = r
            print(f"{day} {label(policy, dpm)}: {r['wall_seconds']:.1f} s", file=sys.stderr, flush=True)

    print("| day | VMs | run | overload host-min | hot host-min | migrations | migrated GiB | imbalance mean | "
          "imbalance p95 | host-hours | energy kWh | replay s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for day, runs in results.items():
        for (policy, dpm), r in runs.items():
            print(f"| {day} | {r['scenario']['vms']} | {label(policy, dpm)} | {r['overload_minutes']:.0f} | "
                  f"{r['hot_minutes']:.0f} | {r['migrations']} | {r['migrated_gb']:,.0f} | "
                  f"{r['imbalance_mean']:.4f} | {r['imbalance_p95']:.4f} | {r['host_hours']:.1f} | "
                  f"{r['energy_kwh']:.1f} | {r['wall_seconds']:.1f} |")

    totals = {key: {m: sum(results[d][key][m] for d in results)
                    for m in ("overload_minutes", "migrations", "host_hours")} for key in RUNS}
    rows = [(day, targets(runs)) for day, runs in results.items()] + [("all days (sums)", targets(totals))]
    print()
    print("| day | " + " | ".join(rows[0][1]) + " |")
    print("| --- " * (len(rows[0][1]) + 1) + "|")
    for day, t in rows:
        print(f"| {day} | " + " | ".join(t.values()) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {day: {label(p, d): r for (p, d), r in runs.items()} for day, runs in results.items()}, indent=1))


if __name__ == "__main__":
    main()
