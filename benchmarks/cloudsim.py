"""The CloudSim PlanetLab scenario on whole trace days (not for CI: a day of THR-MMT takes about
5 seconds on the 2-core machine, a day of the balancer about 20; tests/test_cloudsim.py runs a slice).

    python benchmarks/cloudsim.py --days 20110303 --policies thr-mmt,balancer [--memory cloudsim]
        [--config config/planetlab-cloudsim.yaml]   # the balancer's drs / dpm settings (default: the service's)

One JSON line per (day, policy): energy kWh, SLATAH, PDM, SLAV, ESV, migrations, overload minutes,
host-hours, wall seconds. CloudSim 3.0.3 on 20110303 (issue #36): THR-MMT 0.8 192.62 kWh, SLATAH 4.91 %,
PDM 0.06 %, SLAV 3.18e-5, 26,711 migrations; LR-MMT 1.2 163.48 kWh, 5.86 %, 0.08 %, 4.64e-5, 27,859.
"""

from __future__ import annotations

import argparse
import json

from balancer.whatif.cloudsim_policies import run_scenario

MARCH = ["20110303", "20110306", "20110309", "20110322", "20110325"]
APRIL = ["20110403", "20110409", "20110411", "20110412", "20110420"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", default="march", help="march, april, or DAY,DAY")
    ap.add_argument("--policies", default="thr-mmt,balancer")
    ap.add_argument("--memory", default="cloudsim", choices=["cloudsim", "configured", "vsphere"])
    ap.add_argument("--hosts", type=int, default=800)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--config", help="a config file whose drs / dpm settings the balancer plans with")
    a = ap.parse_args()
    cfg = None
    if a.config:
        from balancer.config import load_config
        cfg = load_config(a.config)
    days = MARCH if a.days == "march" else APRIL if a.days == "april" else a.days.split(",")
    for day in days:
        for policy in a.policies.split(","):
            out = run_scenario(day, policy, a.hosts, None, a.steps, a.memory, cfg)
            out["load_average"] = open("/proc/loadavg").read().split()[0]  # the shared machine's load at the end
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
