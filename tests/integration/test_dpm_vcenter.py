"""DPM and maintenance against the vCenter simulator: standby, power-on and evacuation reach it over SOAP."""

from __future__ import annotations

import json

import pytest
import yaml

from balancer.engine import History, PlanOptions, make_plan
from balancer.engine.options import DpmOptions
from balancer.snapshot import HostState
from test_vcenter_cli import balancer as run_balancer
from test_vcenter_cli import write_config
from vcsim_harness import host_name

pytestmark = pytest.mark.integration


def test_dpm_standby_then_power_on_reach_the_simulator(vcsim, admin, tmp_path):
    # The simulator's load is tiny: DPM empties hosts down to min_hosts_on and puts them into standby.
    config = write_config(vcsim, tmp_path / "vc.yaml")
    cfg = yaml.safe_load(open(config))
    cfg["dpm"] = {"max_standby_per_cycle": 2, "pace": 1.0}  # both spare hosts in one plan (the pace takes half the gap)
    open(config, "w").write(yaml.safe_dump(cfg))
    plan_file = tmp_path / "plan.json"
    proc = run_balancer("recommend", "--config", config, "--dpm", "--format", "json", "--out", str(plan_file))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(plan_file.read_text())
    standby = [p["host"] for p in plan["power"] if p["action"] == "standby"]
    assert len(standby) == 2  # 4 hosts, min_hosts_on 2
    assert {m["reason"] for m in plan["moves"]} == {"dpm"}
    assert {m["source"] for m in plan["moves"]} == set(standby)

    proc = run_balancer("apply", str(plan_file), "--config", config, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(r["outcome"] == "success" for r in json.loads(proc.stdout))
    for h in standby:
        assert admin.host_power_state(h) == "standBy"
    assert not set(admin.placement().values()) & set(standby)

    with vcsim.source() as src:
        fresh = src.snapshot()
        assert {h.name for h in fresh.hosts if h.state is HostState.STANDBY} == set(standby)
        # rising load: the demand judged over the power-on window is above the band
        on_cpu = sum(h.cpu_capacity_mhz for h in fresh.hosts if h.is_on)
        rising = History(demand_power_on=(0.9 * on_cpu, 1024.0), demand_power_off=(0.9 * on_cpu, 1024.0))
        plan = make_plan(fresh, PlanOptions(dpm=DpmOptions(), time_limit_s=2), rising)
        woken = [p for p in plan.power if p.action == "power-on"]
        assert woken and [p.step for p in woken] == list(range(1, len(woken) + 1))
        results = src.execute(plan)
        assert [r.outcome for r in results] == ["success"] * len(results)
        after = src.snapshot()
    for p in woken:
        assert after.host(p.host).state is HostState.ON
        assert admin.host_power_state(p.host) == "poweredOn"
    moved_in = [m for m in plan.moves if m.target in {p.host for p in woken}]
    assert all(admin.placement()[m.vm] == m.target for m in moved_in)


def test_evacuate_execute_enters_maintenance_on_the_simulator(vcsim, admin, tmp_path):
    from pyVmomi import vim

    config = write_config(vcsim, tmp_path / "vc.yaml")
    target = host_name(1)
    # one of the VMs leaving is in a child resource pool: it stays there
    alloc = vim.ResourceAllocationInfo(reservation=0, limit=-1, expandableReservation=True,
                                       shares=vim.SharesInfo(level="high", shares=0))
    pool = admin.cluster.resourcePool.CreateResourcePool(
        name="prod-rp", spec=vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc))
    leaving = next(vm for vm, h in admin.placement().items() if h == target)
    admin.wait(admin.vms()[leaving].RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=pool)))
    proc = run_balancer("evacuate", target, "--config", config, "--execute", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["plan"]["moves"]) == 3 and all(m["source"] == target for m in out["plan"]["moves"])
    assert out["results"][-1]["action"] == "enter-maintenance" and out["results"][-1]["outcome"] == "success"
    assert target not in admin.placement().values()
    with vcsim.source() as src:
        after = src.snapshot()
        assert after.host(target).state is HostState.MAINTENANCE
    assert after.vm(leaving).host != target and after.vm(leaving).resource_pool == "prod-rp"
    assert admin.props(admin.vms()[leaving], "resourcePool")["resourcePool"]._GetMoId() == pool._GetMoId()
