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


def test_automatic_moves_come_before_manual_ones_and_dpm_empties_no_host_for_a_manual_vm():
    hosts = [{"name": n, "cpu_capacity_mhz": 20000.0, "mem_capacity_mb": 65536.0} for n in ("a", "b", "c")]
    # a at 80 %: nothing to repair, much to balance, and enough automatic VMs to balance it alone
    vms = [{"name": f"{kind}{i}", "host": "a", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 2000.0,
            "mem_demand_mb": 1024.0, "automation": "manual" if kind == "m" else "default"}
           for kind, n in (("m", 2), ("d", 6)) for i in range(n)]
    s = parse_snapshot({"version": 5, "cluster": "c", "hosts": hosts, "vms": vms})
    plan = make_plan(s, PlanOptions(threshold=3, manual_vms=True))
    assert plan.moves and all(m.vm.startswith("d") for m in plan.moves), plan.moves  # same gain: automatic first
    # DPM: at low load, the host of a manual VM is not emptied for standby
    from balancer.engine.options import DpmOptions

    idle = [{"name": "m0", "host": "b", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 100.0, "mem_demand_mb": 512.0,
             "automation": "manual"},
            {"name": "d0", "host": "c", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 100.0, "mem_demand_mb": 512.0}]
    s = parse_snapshot({"version": 5, "cluster": "c", "hosts": hosts, "vms": idle})
    plan = make_plan(s, PlanOptions(manual_vms=True, dpm=DpmOptions(min_hosts_on=1, all_steps=True)))
    assert "b" not in {p.host for p in plan.power if p.action == "standby"} and not [m for m in plan.moves if m.vm == "m0"]
