"""Host duties and compatibility (engine/compute/compat.py): a dedicated HA failover host receives no VM,
a VM goes only to a host with at least its configured memory -- in every planner."""

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.compat import refusal
from balancer.engine.compute.placement import place_vm
from balancer.engine.options import DpmOptions
from balancer.snapshot import parse_snapshot
from balancer.snapshot.vmspec import VmSpec
from helpers import run_cli

HA = {"policy": "failover-hosts", "failover_hosts": ["fo"]}
EVC = ["intel-skylake", "intel-cascadelake", "intel-icelake"]


def host(name, cpu=10000, mem=10000, state="on"):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": state}


def vm(name, h, cpu=1000, mem=500, mem_mb=4096, **kw):
    return {"name": name, "host": h, "vcpus": 4, "mem_mb": mem_mb, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def snap(hosts, vms, rules=(), ha=HA):
    data = {"version": 5, "cluster": "t", "hosts": hosts, "vms": vms, "rules": list(rules)}
    if ha is not None:
        data["ha"] = ha
    return parse_snapshot(data)


def skewed():
    # a is at 99 %, b has no room for a VM of a, the failover host fo is empty: balancing would love fo
    return snap([host("a"), host("b", cpu=4000), host("fo")],
                [vm(f"v{i}", "a", cpu=1100) for i in range(9)] + [vm("w", "b", cpu=3000)])


def test_balancing_and_repairs_leave_the_failover_host_empty():
    for threshold in (1, 3, 5):
        for planner in ("cp-sat", "greedy"):
            plan = make_plan(skewed(), PlanOptions(threshold=threshold, planner=planner))
            assert all(m.target != "fo" for m in plan.moves), (threshold, planner)
    # without HA's failover policy the same cluster balances onto fo
    free = make_plan(snap(skewed().model_dump(mode="json")["hosts"], skewed().model_dump(mode="json")["vms"], ha=None),
                     PlanOptions(threshold=3))
    assert any(m.target == "fo" for m in free.moves)


def test_a_host_above_its_limit_is_not_relieved_onto_the_failover_host():
    plan = make_plan(skewed(), PlanOptions(threshold=1))
    assert plan.moves == [] and [v.name for v in plan.violations_after] == ["a"]
    assert any("still broken after this plan: a:" in n for n in plan.notes), plan.notes


def test_dpm_and_maintenance_evacuations_avoid_the_failover_host():
    s = snap([host("a"), host("b"), host("c"), host("fo")],
             [vm("v1", "a", cpu=500), vm("v2", "b", cpu=500), vm("v3", "c", cpu=500)])
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(max_standby=None, min_hosts_on=1, headroom_hosts=0)))
    assert plan.moves and all(m.target != "fo" for m in plan.moves)
    assert "fo" not in {p.host for p in plan.power}
    plan = make_plan(s, PlanOptions(evacuate=("a",)))
    assert [m.vm for m in plan.moves] == ["v1"] and plan.moves[0].target in ("b", "c")


def test_an_evacuation_that_could_only_go_to_the_failover_host_is_refused_naming_it(tmp_path):
    s = snap([host("a"), host("fo")], [vm("v1", "a")])
    plan = make_plan(s, PlanOptions(evacuate=("a",)))
    assert plan.status == "infeasible" and plan.moves == []
    assert "fo: a dedicated HA failover host: it receives no VM" in plan.conflicts[0], plan.conflicts
    path = tmp_path / "s.json"
    path.write_text(json.dumps(s.model_dump(mode="json")))
    proc = run_cli("evacuate", "a", "--snapshot", str(path))
    assert proc.returncode == 3 and "dedicated HA failover host" in proc.stdout + proc.stderr


def test_placement_never_ranks_the_failover_host_nor_a_host_with_too_little_memory():
    s = snap([host("a", mem=8192), host("b", mem=65536), host("fo", mem=65536)], [vm("w", "b")])
    out = place_vm(s, VmSpec(name="new", vcpus=4, mem_mb=16384, cpu_demand_mhz=500))
    assert [c.host for c in out.hosts] == ["b"]
    why = {r.host: r.why for r in out.rejected}
    assert why["fo"] == "a dedicated HA failover host: it receives no VM"
    assert why["a"] == "8192 MB of memory < the VM's 16384 MB"


def test_a_vm_goes_only_where_its_configured_memory_fits():
    # big (32 GB configured, little demand) would balance best onto small, which has 16 GB
    s = snap([host("a", mem=131072), host("small", mem=16384), host("c", mem=131072, cpu=2000)],
             [vm("big", "a", cpu=4000, mem_mb=32768)] + [vm(f"v{i}", "a", cpu=1000) for i in range(4)], ha=None)
    plan = make_plan(s, PlanOptions(threshold=5))
    assert all(not (m.vm == "big" and m.target == "small") for m in plan.moves)
    assert any(m.target == "small" for m in plan.moves), "the others may go there"


@st.composite
def clusters_with_a_failover_host(draw):
    n = draw(st.integers(3, 8))
    hosts = [dict(host(f"h{i}", cpu=draw(st.sampled_from([8000, 10000, 20000])),
                       mem=draw(st.sampled_from([8192, 16384, 65536])),
                       state=draw(st.sampled_from(["on"] * 5 + ["maintenance"])) if i > 1 else "on"),
                  networks=draw(st.sampled_from([["prod"], ["prod", "dmz"], []])),
                  max_evc_mode=draw(st.sampled_from(EVC))) for i in range(n)]
    fo = hosts[-1]["name"]
    hosts[-1]["state"] = "on"
    targets = [h["name"] for h in hosts[:-1] if h["state"] != "standby"]
    vms = [vm(f"v{j}", draw(st.sampled_from(targets)), cpu=draw(st.integers(100, 3000)), mem=draw(st.integers(100, 4000)),
              mem_mb=draw(st.sampled_from([4096, 12288, 32768])), networks=draw(st.sampled_from([[], ["prod"], ["dmz"]])),
              min_evc_mode=draw(st.sampled_from([None, *EVC])))
           for j in range(draw(st.integers(1, 20)))]
    return snap(hosts, vms, ha={"policy": "failover-hosts", "failover_hosts": [fo]}), fo


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters_with_a_failover_host(), st.integers(1, 5), st.booleans())
def test_no_plan_sends_a_vm_to_the_failover_host_or_a_host_too_small(case, threshold, dpm):
    s, fo = case
    plan = make_plan(s, PlanOptions(threshold=threshold, dpm=DpmOptions(max_standby=None) if dpm else None))
    mem = {h.name: h.mem_capacity_mb for h in s.hosts}
    hosts = {h.name: h for h in s.hosts}
    for m in plan.moves:
        assert m.target != fo
        assert s.vm(m.vm).mem_mb <= mem[m.target]
        vm_ = s.vm(m.vm)  # networks and CPU features: the target has them
        assert refusal(s, hosts[m.target], vm_.mem_mb, vm_.vcpus, vm_) is None, (m, hosts[m.target])
    assert fo not in {p.host for p in plan.power if p.action == "standby"}
    assert np.isfinite(plan.imbalance.after.cpu)


def test_a_vm_with_more_vcpus_than_a_host_has_logical_cpus_never_goes_there(tmp_path):
    # wide (48 vCPUs) would balance best onto small (16 cores, 32 threads); big has 64 threads
    hosts = [dict(host("a", cpu=100000, mem=524288), cpu_cores=32, cpu_threads=64),
             dict(host("small", cpu=100000, mem=524288), cpu_cores=16, cpu_threads=32),
             dict(host("big", cpu=100000, mem=524288), cpu_cores=32, cpu_threads=64)]
    vms = [dict(vm("wide", "a", cpu=40000), vcpus=48), vm("b1", "big", cpu=20000), vm("b2", "big", cpu=20000)]
    s = snap(hosts, vms, ha=None)
    for threshold in (1, 3, 5):
        plan = make_plan(s, PlanOptions(threshold=threshold))
        assert all(not (m.vm == "wide" and m.target == "small") for m in plan.moves)
    # evacuating a: only big has the threads for it
    plan = make_plan(s, PlanOptions(evacuate=("a",)))
    assert [(m.vm, m.target) for m in plan.moves] == [("wide", "big")]
    out = place_vm(s, VmSpec(name="new", vcpus=48, mem_mb=16384, cpu_demand_mhz=500))
    assert "small" not in [c.host for c in out.hosts]
    assert {r.host: r.why for r in out.rejected}["small"] == "32 logical CPUs < the VM's 48 vCPUs"


def test_a_vm_goes_only_to_hosts_with_its_networks_and_cpu_features():
    # a and b are full; c lacks the dmz network, d has older CPUs: balancing would love c and d
    hosts = [dict(host(n, cpu=20000), networks=["prod", "dmz"], max_evc_mode="intel-icelake") for n in ("a", "b")]
    hosts += [dict(host("c", cpu=20000), networks=["prod"], max_evc_mode="intel-icelake"),
              dict(host("d", cpu=20000), networks=["prod", "dmz"], max_evc_mode="intel-skylake")]
    vms = [vm(f"dmz{i}", "a" if i % 2 else "b", cpu=3000, networks=["dmz"]) for i in range(5)]
    vms += [vm(f"new{i}", "a" if i % 2 else "b", cpu=3000, networks=["prod"], min_evc_mode="intel-icelake")
            for i in range(5)]
    s = snap(hosts, vms, ha=None)
    for threshold in (1, 3, 5):
        for planner in ("cp-sat", "greedy"):
            plan = make_plan(s, PlanOptions(threshold=threshold, planner=planner))
            assert not [m for m in plan.moves if m.vm.startswith("dmz") and m.target == "c"]
            assert not [m for m in plan.moves if m.vm.startswith("new") and m.target == "d"]
    plan = make_plan(s, PlanOptions(threshold=5))
    assert {m.target for m in plan.moves} == {"c", "d"}  # each kind goes where it may
    vms[-1]["powered_on"] = False  # new4, registered, placed before it powers on
    out = place_vm(snap(hosts, vms, ha=None), VmSpec(name="new4", cpu_demand_mhz=3000))
    assert {r.host: r.why for r in out.rejected}["d"] == \
        "its CPUs (highest EVC mode intel-skylake) lack the VM's intel-icelake features"


def test_apply_refuses_a_hand_made_move_onto_the_failover_host(tmp_path):
    from balancer.errors import InputError
    from balancer.checks.replay import check_plan_steps
    from balancer.plan import Move

    s = skewed()
    plan = make_plan(s, PlanOptions(max_moves=0, max_repair_moves=0)).model_copy(
        update={"moves": [Move(step=1, vm="v0", source="a", target="fo", reason="balance")]})
    import pytest

    with pytest.raises(InputError, match="step 1: moving v0 from a to fo is not allowed .fo: a dedicated HA failover host"):
        check_plan_steps(s, plan, PlanOptions())


def test_vsphere_automation_names_are_read_and_honoured():
    import pytest

    from balancer.errors import InputError

    vms = [vm("full", "a", cpu=3000, automation="fullyAutomated"), vm("part", "a", cpu=3000, automation="partiallyAutomated"),
           vm("m", "a", cpu=3000, automation="manual")]
    s = snap([host("a"), host("b")], vms, ha=None)
    plan = make_plan(s, PlanOptions(threshold=5))
    assert {m.vm for m in plan.moves} == {"full"}, "only the fully automated VM is migrated on its own"
    data = {"version": 3, "cluster": "t", "hosts": [host("a"), host("b")], "vms": vms}
    with pytest.raises(InputError, match=r"vms\.0\.automation: 'fullyAutomated' is a version 4 value in a version 3 snapshot"):
        parse_snapshot(data)


def test_idle_memory_percent_sets_the_idle_share_of_memory_demand(tmp_path):
    from types import SimpleNamespace

    from balancer.config import SimConfig
    from balancer.sources.sim.cluster import SimulatedCluster
    from balancer.sources.vcenter.collector import demand

    quick = SimpleNamespace(overallCpuDemand=500, activeMemory=1000, hostMemoryUsage=3000)
    assert demand(None, quick, 2000.0)[1] == 1500.0  # DRS's default: active + 25 % of idle consumed
    assert demand(None, quick, 2000.0, 0.0)[1] == 1000.0
    assert demand(None, quick, 2000.0, 1.0)[1] == 3000.0
    default = SimulatedCluster(SimConfig(vms=20)).snapshot()
    active_only = SimulatedCluster(SimConfig(vms=20), 0.0).snapshot()
    assert sum(v.mem_demand_mb for v in active_only.vms) < sum(v.mem_demand_mb for v in default.vms)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("drs:\n  idle_memory_percent: 150\n")
    proc = run_cli("check-config", str(cfg))
    assert proc.returncode == 2 and "idle_memory_percent" in proc.stdout + proc.stderr
