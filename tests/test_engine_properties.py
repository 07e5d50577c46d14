"""Property-based tests of the engine's invariants on random clusters."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.cluster import build_cluster
from balancer.snapshot import parse_snapshot

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def clusters(draw):
    n_hosts = draw(st.integers(2, 7))
    hosts = []
    for i in range(n_hosts):
        state = draw(st.sampled_from(["on"] * 6 + ["maintenance", "standby"])) if i > 1 else "on"
        hosts.append({"name": f"h{i}", "cpu_capacity_mhz": draw(st.sampled_from([20000, 40000, 60000])),
                      "mem_capacity_mb": draw(st.sampled_from([65536, 131072, 262144])), "state": state})
    on_hosts = [h["name"] for h in hosts if h["state"] == "on"]
    any_hosts = [h["name"] for h in hosts if h["state"] != "standby"]
    n_vms = draw(st.integers(1, 30))
    vms = []
    for j in range(n_vms):
        powered = draw(st.booleans()) or draw(st.booleans())
        vms.append({
            "name": f"v{j}", "host": draw(st.sampled_from(any_hosts if powered else [h["name"] for h in hosts])),
            "vcpus": 2, "mem_mb": draw(st.sampled_from([2048, 4096, 8192, 16384])),
            "cpu_demand_mhz": float(draw(st.integers(0, 6000))), "mem_demand_mb": float(draw(st.integers(0, 12000))),
            "powered_on": powered, "automation": draw(st.sampled_from(["default"] * 8 + ["manual", "disabled"])),
        })
    names = [v["name"] for v in vms]
    rules = []
    if n_vms >= 2 and draw(st.booleans()):
        pair = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
        rules.append({"name": "apart", "type": "vm-anti-affinity", "vms": pair,
                      "mandatory": draw(st.booleans())})
    if n_vms >= 4 and draw(st.booleans()):
        rest = [n for n in names if not rules or n not in rules[0]["vms"]]
        if len(rest) >= 2:
            pair = draw(st.lists(st.sampled_from(rest), min_size=2, max_size=2, unique=True))
            rules.append({"name": "together", "type": "vm-affinity", "vms": pair})
    vm_groups, host_groups = {}, {}
    if draw(st.booleans()):
        vm_groups["g"] = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
        host_groups["hg"] = draw(st.lists(st.sampled_from([h["name"] for h in hosts]), min_size=1, max_size=3, unique=True))
        rules.append({"name": "placed", "type": "vm-host", "vm_group": "g", "host_group": "hg",
                      "affine": draw(st.booleans()), "mandatory": draw(st.booleans())})
    snap = {"version": 1, "cluster": "c", "hosts": hosts, "vms": vms, "vm_groups": vm_groups,
            "host_groups": host_groups, "rules": rules}
    return parse_snapshot(snap)


def _replay(snapshot, plan, options):
    """Apply the plan step by step, checking every intermediate state."""
    c = build_cluster(snapshot, options)
    place = c.place.copy()
    loads = c.host_loads(place)
    vm_idx = {n: i for i, n in enumerate(c.vm_names)}
    host_idx = {n: i for i, n in enumerate(c.host_names)}
    for m in plan.moves:
        v, s, t = vm_idx[m.vm], host_idx[m.source], host_idx[m.target]
        assert place[v] == s, "a move's source is where the VM is at that step"
        assert c.on[t], "nothing moves to a host that is not on"
        assert c.allowed[v, t], "no move breaks a mandatory VM-host rule"
        snap_vm = snapshot.vm(m.vm)
        assert snap_vm.powered_on, "powered-off VMs never move"
        assert snap_vm.automation.value == "default" or c.must_leave[v], "manual/disabled VMs stay"
        loads[s] -= c.load[v]
        loads[t] += c.load[v]
        place[v] = t
        assert np.all(loads[t] <= c.bound[t] + 1e-6), "capacity holds at every step"
        for g in c.anti:
            if g.mandatory and v in g.vms:
                others = [o for o in g.vms if o != v]
                assert t not in place[others], "a move never joins a mandatory anti-affinity partner"
    return c, place


@SETTINGS
@given(clusters(), st.integers(1, 5), st.one_of(st.none(), st.integers(0, 6)))
def test_plan_is_executable_and_safe(snapshot, threshold, max_moves):
    options = PlanOptions(threshold=threshold, max_moves=max_moves, time_limit_s=0.5)
    plan = make_plan(snapshot, options)
    if plan.status == "infeasible":
        assert plan.moves == [] and plan.conflicts
        return
    if max_moves is not None:
        assert len(plan.moves) <= max_moves
    c, place = _replay(snapshot, plan, options)
    assert [m.step for m in plan.moves] == list(range(1, len(plan.moves) + 1))
    # no mandatory violation is introduced
    before = {(v.kind, v.name) for v in plan.violations_before if v.mandatory}
    after = {(v.kind, v.name) for v in plan.violations_after if v.mandatory}
    assert after <= before


@SETTINGS
@given(clusters())
def test_deterministic(snapshot):
    options = PlanOptions(threshold=4, max_moves=5, time_limit_s=5)
    a = make_plan(snapshot, options).to_json_dict()
    b = make_plan(snapshot, options).to_json_dict()
    assert a == b


@SETTINGS
@given(clusters())
def test_threshold_one_moves_only_mandatory(snapshot):
    plan = make_plan(snapshot, PlanOptions(threshold=1, time_limit_s=0.5))
    for m in plan.moves:
        assert m.reason in ("rule", "capacity", "evacuate")
        assert m.reason != "rule" or m.mandatory
