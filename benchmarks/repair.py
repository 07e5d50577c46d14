"""Repair at scale: threshold-1 plans of generated 5,000-host clusters with hosts pushed over capacity.

Not a test. For each instance (benchmarks/instances.py, shape ``demand``: a load spike on a share
of the hosts, with 0 / 1/3 / 2/3 / all of the VMs in anti-affinity groups of 2-8 and VM groups that
must run on a host group), ``balancer recommend --snapshot S --threshold 1 --format json`` runs end to
end in a fresh process (start-up, reading and validating the snapshot, planning, writing the plan).
It prints wall time, peak memory (the child's maximum resident set), moves and the hard and headroom
violations before and after, and the ratio of the time to the 60 s target.

    python benchmarks/repair.py [--sizes 5000x15000,5000x30000] [--anti 0,0.33,0.67,1] [--over 0.01,0.1,0.3]
                                [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from instances import repair_instance  # noqa: E402

TARGET_S = 60.0
TARGET_MB = 1024.0


def run(path: str) -> dict:
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "balancer", "recommend", "--snapshot", path, "--threshold", "1",
                                 "--format", "json"], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
        wall = time.monotonic() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"recommend failed: {stderr.strip()[:300]}")
    peak = usage.ru_maxrss  # KiB on Linux
    plan = json.loads(stdout)

    def count(vs: list, kind: str) -> int:
        hard = [v for v in vs if v["mandatory"] and v["kind"] != "headroom"]
        return len(hard) if kind == "hard" else len([v for v in vs if v["kind"] == "headroom"])

    return {"wall_s": round(wall, 1), "peak_mb": round(peak / 1024, 0), "moves": len(plan["moves"]),
            "hard": (count(plan["violations_before"], "hard"), count(plan["violations_after"], "hard")),
            "headroom": (count(plan["violations_before"], "headroom"), count(plan["violations_after"], "headroom")),
            "notes": [n for n in plan["notes"] if "still broken" in n or "clock" in n][:2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5000x15000,5000x30000")
    ap.add_argument("--anti", default="0,0.33,0.67,1")
    ap.add_argument("--over", default="0.01,0.1,0.3")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"{'hosts x VMs':>12} {'anti':>5} {'over':>5} {'violations':>10} {'wall s':>7} {'/60 s':>6} {'peak MB':>8} "
          f"{'moves':>6} {'hard before->after':>19} {'headroom before->after':>23}")
    worst_time = worst_mem = 0.0
    left = 0
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            n_hosts, n_vms = (int(x) for x in size.split("x"))
            for anti in (float(a) for a in args.anti.split(",")):
                for over in (float(o) for o in args.over.split(",")):
                    data, _ = repair_instance(n_hosts, n_vms, seed=args.seed, anti_share=anti, over_share=over)
                    path = os.path.join(tmp, "s.json")
                    with open(path, "w") as f:
                        json.dump(data, f)
                    r = run(path)
                    hosts_over = r["hard"][0] + r["headroom"][0]  # (a spike is on CPU: one a host)
                    worst_time, worst_mem = max(worst_time, r["wall_s"]), max(worst_mem, r["peak_mb"])
                    left += r["hard"][1] + r["headroom"][1]
                    print(f"{size:>12} {anti:>5.2f} {over:>5.2f} {hosts_over:>10} {r['wall_s']:>7.1f} "
                          f"{r['wall_s'] / TARGET_S:>6.2f} {r['peak_mb']:>8.0f} {r['moves']:>6} "
                          f"{r['hard'][0]:>9} -> {r['hard'][1]:<6} {r['headroom'][0]:>11} -> {r['headroom'][1]:<8}",
                          flush=True)
                    for note in r["notes"]:
                        print(f"{'':>12} note: {note[:200]}")
    print(f"worst: {worst_time:.1f} s ({worst_time / TARGET_S:.2f} x the {TARGET_S:.0f} s target), "
          f"{worst_mem:.0f} MB ({worst_mem / TARGET_MB:.2f} x 1 GiB); violations left: {left}")


if __name__ == "__main__":
    main()
