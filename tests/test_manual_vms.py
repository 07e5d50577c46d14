"""VMs whose DRS override is manual: recommended (marked for an admin), as vSphere recommends them, and
never moved by a plan carried out automatically (the service)."""

from __future__ import annotations

from balancer.engine import PlanOptions, make_plan
from balancer.snapshot import parse_snapshot


def skewed():
    hosts = [{"name": n, "cpu_capacity_mhz": 20000.0, "mem_capacity_mb": 65536.0} for n in ("a", "b")]
    vms = [{"name": f"m{i}", "host": "a", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 3000.0, "mem_demand_mb": 1024.0,
            "automation": "manual"} for i in range(5)]
    return parse_snapshot({"version": 5, "cluster": "c", "hosts": hosts, "vms": vms})


def test_manual_vms_are_recommended_marked_for_an_admin():
    plan = make_plan(skewed(), PlanOptions(threshold=3, manual_vms=True))
    assert plan.moves and all("DRS override is manual" in m.detail for m in plan.moves)
    assert not make_plan(skewed(), PlanOptions(threshold=3)).moves  # carried out automatically: never


def test_the_service_recommends_them_and_does_not_move_them(tmp_path):
    from test_service import _cycle

    cycle, source, journal = _cycle(tmp_path, drs={"automation": "full"})
    for v in source.vms:
        v.automation = "manual"  # every VM of the simulated cluster under a manual DRS override
    res = cycle.run()
    assert res.recommendation.moves and all("DRS override is manual" in m.detail for m in res.recommendation.moves)
    assert not [r for r in res.results if r.kind == "move"]
