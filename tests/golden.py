"""The golden corpus: snapshots and the plans the engine made of them, kept in tests/data/golden/.

A refactor of the engine must not change a plan. ``python tests/golden.py`` (re)writes the corpus
(the snapshots and, with ``--plans``, the recorded plans; only when a plan is meant to change, and
say why in the commit); tests/test_golden.py plans every case again and compares.

Each case names a snapshot (or, for a balancing domain, several), the options, and the planner:
``plan`` (engine.make_plan: compute, DPM, evacuation, storage) or ``domain`` (engine.plan_domain).
The snapshots come from generators kept here so that the corpus can be rebuilt and read: the
embedded simulated cluster at several hours of its trace, the repair instances of benchmarks/, small
storage clusters and small domains.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "golden"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TIME = 1.0  # time_limit_s of every case: the work budget, the same on every machine


def _snapshots() -> dict[str, dict]:
    """name -> snapshot document."""
    from instances import repair_instance

    from balancer.config import SimConfig
    from balancer.sources.sim import SimulatedCluster
    from domain_helpers import busy, cluster
    from storage_helpers import datastore, disk, host, storage_snap, vm

    out: dict[str, dict] = {}
    for name, cfg, cycles in (
        ("sim-8", SimConfig(hosts=8, vms=160, seed=1), (0, 30, 90, 150, 200, 250)),
        ("sim-16", SimConfig(hosts=16, vms=300, seed=2, start=200), (0, 60, 120, 180)),
        ("sim-24", SimConfig(hosts=24, vms=420, seed=3, start=30, partial_mounts=True), (0, 60)),
        ("sim-12s4", SimConfig(hosts=12, vms=200, seed=4, start=0), (0,)),
        ("sim-12s5", SimConfig(hosts=12, vms=260, seed=5, start=140), (0,)),
        ("sim-6s6", SimConfig(hosts=6, vms=150, seed=6, start=250, datastores=0), (0,)),
        ("sim-32s7", SimConfig(hosts=32, vms=600, seed=7, start=100), (0,)),
        ("sim-4s8", SimConfig(hosts=4, vms=40, seed=8, start=20), (0,)),
        ("sim-10s9", SimConfig(hosts=10, vms=240, seed=9, start=200, trace="20110306"), (0, 40)),
    ):
        sim = SimulatedCluster(cfg)
        done = 0
        for c in cycles:
            while done < c:
                sim.advance()
                done += 1
            out[f"{name}-c{c}"] = sim.snapshot().model_dump(mode="json", exclude_none=True)
    for name, kw in (
        ("repair-demand", dict(n_hosts=20, n_vms=300, seed=1, anti_share=0.2, shape="demand")),
        ("repair-displace", dict(n_hosts=20, n_vms=300, seed=2, anti_share=0.2, shape="displace")),
        ("repair-affinity", dict(n_hosts=16, n_vms=240, seed=3, affinity_share=0.2, shape="displace")),
        ("repair-maintenance", dict(n_hosts=16, n_vms=200, seed=4, anti_share=0.1, shape="displace", maintenance=2)),
        ("repair-full", dict(n_hosts=12, n_vms=260, seed=5, anti_share=0.1, shape="demand", fill=0.9, over_share=0.4)),
        ("repair-demand-2", dict(n_hosts=24, n_vms=400, seed=11, anti_share=0.3, shape="demand")),
        ("repair-displace-2", dict(n_hosts=10, n_vms=150, seed=12, anti_share=0.4, shape="displace")),
        ("repair-affinity-2", dict(n_hosts=20, n_vms=260, seed=13, affinity_share=0.3, shape="displace")),
        ("repair-maintenance-2", dict(n_hosts=12, n_vms=150, seed=14, shape="displace", maintenance=3)),
        ("repair-mixed", dict(n_hosts=16, n_vms=220, seed=15, anti_share=0.2, affinity_share=0.1, shape="displace",
                              maintenance=1)),
        ("repair-light", dict(n_hosts=8, n_vms=80, seed=16, shape="demand", fill=0.3)),
        ("repair-tight", dict(n_hosts=14, n_vms=300, seed=17, anti_share=0.15, shape="demand", fill=0.8, over_share=0.3)),
    ):
        out[name] = repair_instance(**kw)[0]
    for f in ("example-snapshot.json", "rules-snapshot.json"):
        out[f.removesuffix(".json")] = json.loads((ROOT / "tests" / "data" / f).read_text())

    hs = [host(f"h{i}") for i in range(4)]
    names = [h["name"] for h in hs]
    dss = [datastore("ds1", 1100, names), datastore("ds2", 1000, names), datastore("ds3", 1000, names[:2])]
    vms = [vm(f"v{j}", names[j % 4], [disk("d1", "ds1", 40 + 3 * j), disk("d2", "ds3" if j % 4 < 2 and j % 3 == 0 else "ds1" if j % 3 else "ds2", 20)])
           for j in range(14)]
    out["storage-full"] = storage_snap(hs, dss, vms).model_dump(mode="json", exclude_none=True)

    for name, snap in (("dom-a", cluster("a", 4, busy(38))), ("dom-b", cluster("b", 4, busy(6))),
                       ("dom-c", cluster("c", 3, busy(12, cpu=9_000.0))), ("dom-d", cluster("d", 6, busy(60))),
                       ("dom-e", cluster("e", 2, busy(2), evc="intel-broadwell", host_evc="intel-skylake")),
                       ("dom-f", cluster("f", 5, busy(8), networks=("prod", "dmz")))):
        out[name] = snap.model_dump(mode="json", exclude_none=True)
    return out


def _cases() -> list[dict[str, Any]]:
    """Every case: {"name", "kind", "snapshots": [...], "options": {...}}."""
    cases: list[dict[str, Any]] = []

    def add(name: str, snap: str, **options: Any) -> None:
        cases.append({"name": name, "kind": "plan", "snapshots": [snap], "options": {"time_limit_s": TIME, **options}})

    for snap in ("sim-8-c0", "sim-8-c30", "sim-8-c90", "sim-16-c0", "sim-16-c60", "sim-24-c0"):
        for t in (1, 3, 5):
            add(f"{snap}-t{t}", snap, threshold=t)
    for snap in ("sim-8-c0", "sim-16-c0"):
        add(f"{snap}-budget0", snap, max_moves=0)
        add(f"{snap}-budget3", snap, max_moves=3)
        add(f"{snap}-greedy", snap, planner="greedy")
        add(f"{snap}-greedy-t5-budget4", snap, planner="greedy", threshold=5, max_moves=4)
        add(f"{snap}-dpm", snap, dpm={})
        add(f"{snap}-dpm-all", snap, dpm={"all_steps": True})
        add(f"{snap}-storage", snap, storage={})
    add("sim-24-c0-storage-evacuate", "sim-24-c0", storage={"evacuate": ["ds-04"]})
    add("sim-8-c30-evacuate", "sim-8-c30", evacuate=["esx01"])
    add("sim-16-c60-evacuate2", "sim-16-c60", evacuate=["esx02", "esx05"], threshold=1)
    for snap in ("repair-demand", "repair-displace", "repair-affinity", "repair-maintenance", "repair-full"):
        add(f"{snap}-t1", snap, threshold=1)
        add(f"{snap}-t3", snap, threshold=3)
    add("repair-displace-repair-cap", "repair-displace", threshold=1, max_repair_moves=5)
    add("repair-demand-greedy", "repair-demand", planner="greedy", threshold=2)
    add("repair-full-budget2", "repair-full", max_moves=2, threshold=4)
    for snap in ("example-snapshot", "rules-snapshot"):
        add(f"{snap}-t3", snap)
        add(f"{snap}-t5-greedy", snap, threshold=5, planner="greedy")
        add(f"{snap}-dpm", snap, dpm={"min_hosts_on": 1})
    add("storage-full-sdrs", "storage-full", storage={})
    add("storage-full-sdrs-cap", "storage-full", storage={"max_moves": 1, "keep_disks_together": False})
    add("storage-full-evacuate", "storage-full", storage={"evacuate": ["ds3"]})
    for snap in ("sim-8-c150", "sim-8-c200", "sim-8-c250", "sim-16-c120", "sim-16-c180", "sim-24-c60",
                 "sim-12s4-c0", "sim-12s5-c0", "sim-6s6-c0", "sim-32s7-c0", "sim-4s8-c0", "sim-10s9-c0", "sim-10s9-c40"):
        add(f"{snap}-t3", snap)
    for snap in ("sim-8-c250", "sim-16-c180", "sim-12s5-c0", "sim-4s8-c0"):
        add(f"{snap}-dpm", snap, dpm={"min_hosts_on": 1})
    add("sim-32s7-c0-t5-budget10", "sim-32s7-c0", threshold=5, max_moves=10)
    add("sim-12s4-c0-evacuate", "sim-12s4-c0", evacuate=["esx03"])
    for snap in ("repair-demand-2", "repair-displace-2", "repair-affinity-2", "repair-maintenance-2", "repair-mixed",
                 "repair-light", "repair-tight"):
        add(f"{snap}-t1", snap, threshold=1)
        add(f"{snap}-t4", snap, threshold=4)
    add("repair-mixed-greedy", "repair-mixed", planner="greedy", threshold=3)
    for name, snaps, kw in (("domain-ab", ["dom-a", "dom-b"], {"max_moves": 3}),
                            ("domain-abc", ["dom-a", "dom-b", "dom-c"], {"max_moves": 5}),
                            ("domain-de", ["dom-d", "dom-e"], {"max_moves": 4}),
                            ("domain-ade", ["dom-a", "dom-d", "dom-e"], {"max_moves": 6}),
                            ("domain-df", ["dom-d", "dom-f"], {"max_moves": 4})):
        cases.append({"name": name, "kind": "domain", "snapshots": snaps, "options": kw})
    return cases


def plan_options(options: dict[str, Any]):
    from balancer.engine.options import DpmOptions, PlanOptions, StorageOptions

    kw = dict(options)
    if "dpm" in kw:
        kw["dpm"] = DpmOptions(**kw["dpm"])
    if "storage" in kw:
        s = dict(kw["storage"])
        s["evacuate"] = tuple(s.get("evacuate", ()))
        kw["storage"] = StorageOptions(**s)
    kw["evacuate"] = tuple(kw.get("evacuate", ()))
    return PlanOptions(**kw)


def run_case(case: dict[str, Any], snapshots: dict[str, Any]) -> dict:
    """The plan of one case, as its JSON document."""
    from balancer.engine import DomainMember, DomainOptions, make_plan, plan_domain

    if case["kind"] == "domain":
        snaps = {snapshots[s].cluster: snapshots[s] for s in case["snapshots"]}
        options = DomainOptions("d", tuple(DomainMember(c, "vc1") for c in snaps), **case["options"])
        return plan_domain(snaps, options).model_dump(mode="json", exclude_none=True)
    return make_plan(snapshots[case["snapshots"][0]], plan_options(case["options"])).to_json_dict()


def load() -> tuple[list[dict], dict[str, Any]]:
    """The cases and their parsed snapshots, from tests/data/golden."""
    from balancer.snapshot import parse_snapshot

    cases = json.loads((DATA / "cases.json").read_text())
    names = {s for c in cases for s in c["snapshots"]}
    return cases, {n: parse_snapshot(json.loads((DATA / "snapshots" / f"{n}.json").read_text())) for n in sorted(names)}


def main() -> None:
    (DATA / "snapshots").mkdir(parents=True, exist_ok=True)
    (DATA / "plans").mkdir(parents=True, exist_ok=True)
    if "--plans" not in sys.argv:
        # snapshots already recorded stay as they are (a generator's output may change with the source
        # that makes it): only new ones are written
        for name, doc in _snapshots().items():
            path = DATA / "snapshots" / f"{name}.json"
            if not path.exists():
                path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        (DATA / "cases.json").write_text(json.dumps(_cases(), indent=1) + "\n")
    cases, snapshots = load()
    for case in cases:
        plan = run_case(case, snapshots)
        (DATA / "plans" / f"{case['name']}.json").write_text(json.dumps(plan, indent=1, sort_keys=True) + "\n")
        print(case["name"], plan.get("status", ""), len(plan.get("moves", [])), len(plan.get("power", [])),
              len(plan.get("storage_moves", [])))


if __name__ == "__main__":
    main()
