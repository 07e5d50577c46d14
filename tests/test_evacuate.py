"""Maintenance-mode evacuation: the engine plan, refusals naming the rule, the command line, --execute."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.engine.cluster import build_cluster
from balancer.engine.hoststate import rule_allowed
from balancer.execute.evacuation import carry_out_evacuation
from balancer.snapshot import parse_snapshot
from balancer.sources.sim import SimulatedCluster
from helpers import run_cli
from test_dpm import host, replay, vm
from test_engine_properties import clusters

FAST = dict(time_limit_s=1.0)


def snap(hosts, vms, rules=(), vm_groups=None, host_groups=None):
    return {"version": 1, "cluster": "t", "hosts": hosts, "vms": vms, "rules": list(rules),
            "vm_groups": vm_groups or {}, "host_groups": host_groups or {}}


def cluster_with_a_full_host():
    hosts = [host("a"), host("b"), host("c")]
    vms = [vm("a1", "a", cpu=2000), vm("a2", "a", cpu=1500, automation="disabled"),
           vm("a-off", "a", cpu=0, mem=0, powered_on=False),
           vm("b1", "b", cpu=3000), vm("b2", "b", cpu=3000), vm("c1", "c", cpu=500), vm("c2", "c", cpu=6000)]
    return hosts, vms


def test_every_registered_vm_leaves_and_nothing_else_moves():
    s = parse_snapshot(snap(*cluster_with_a_full_host()))
    options = PlanOptions(evacuate=("a",), **FAST)
    plan = make_plan(s, options)
    assert plan.status == "ok"
    assert sorted(m.vm for m in plan.moves) == ["a-off", "a1", "a2"]  # powered-off and DRS-disabled VMs too
    assert all(m.reason == "evacuate" and m.mandatory and m.detail == "a enters maintenance" for m in plan.moves)
    assert [(p.host, p.action, p.reason) for p in plan.power] == [("a", "enter-maintenance", "maintenance")]
    assert plan.power[0].step == len(plan.moves) + 1, "maintenance after the last move"
    c, place, _ = replay(s, plan, options)
    assert not np.any(place == c.host_index("a"))


def test_evacuation_refused_when_anti_affinity_leaves_no_room(tmp_path):
    # two hosts, a mandatory anti-affinity pair on them: emptying one would put them together
    data = snap([host("a"), host("b")], [vm("w1", "a"), vm("w2", "b"), vm("x", "a")],
                [{"name": "web-spread", "type": "vm-anti-affinity", "vms": ["w1", "w2"]}])
    plan = make_plan(parse_snapshot(data), PlanOptions(evacuate=("a",), **FAST))
    assert plan.status == "infeasible" and plan.moves == [] and plan.power == []
    assert any("web-spread" in c and c.startswith("evacuating a:") for c in plan.conflicts)

    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    proc = run_cli("evacuate", "a", "--snapshot", str(path))
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "web-spread" in proc.stderr and "cannot evacuate a" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evacuation_refused_by_a_mandatory_vm_host_rule(tmp_path):
    data = snap([host("a"), host("b"), host("c")], [vm("d1", "a"), vm("d2", "b")],
                [{"name": "db-on-a", "type": "vm-host", "vm_group": "db", "host_group": "ha", "affine": True,
                  "mandatory": True}], {"db": ["d1"]}, {"ha": ["a"]})
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    proc = run_cli("evacuate", "a", "--snapshot", str(path), "--format", "json")
    assert proc.returncode == 3 and "db-on-a" in proc.stderr
    assert json.loads(proc.stdout)["status"] == "infeasible"


def test_evacuation_refused_when_capacity_leaves_no_room(tmp_path):
    data = snap([host("a"), host("b")], [vm("big", "a", cpu=6000), vm("b1", "b", cpu=5000)])
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    proc = run_cli("evacuate", "a", "--snapshot", str(path))
    assert proc.returncode == 3 and "no room" in proc.stderr and "big" in proc.stderr


def test_evacuate_command_plans_and_bad_input(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(snap(*cluster_with_a_full_host())))
    proc = run_cli("evacuate", "a", "--snapshot", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert {m["vm"] for m in plan["moves"]} == {"a1", "a2", "a-off"}
    assert plan["power"][-1]["action"] == "enter-maintenance"

    proc = run_cli("evacuate", "nope", "--snapshot", str(path))
    assert proc.returncode == 2 and "nope" in proc.stderr and proc.stderr.count("\n") == 1
    proc = run_cli("evacuate", "a", "--snapshot", str(path), "--execute")
    assert proc.returncode == 2 and "--execute" in proc.stderr


def test_evacuate_execute_on_the_simulated_cluster():
    proc = run_cli("evacuate", "esx03", "--execute", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["plan"]["moves"] and all(m["source"] == "esx03" for m in out["plan"]["moves"])
    assert [r["outcome"] for r in out["results"]] == ["success"] * len(out["results"])
    assert out["results"][-1]["action"] == "enter-maintenance"


def test_maintenance_is_not_entered_when_a_move_did_not_happen():
    sim = SimulatedCluster(SimConfig())
    s = sim.snapshot()
    plan = make_plan(s, PlanOptions(evacuate=("esx03",), **FAST))
    assert plan.status == "ok" and plan.moves
    # someone moves one of the VMs elsewhere after the plan was made: its move is stale and skipped
    stale = plan.moves[0]
    sim.execute(plan.model_copy(update={"moves": [stale.model_copy(update={"target": "esx01"})], "power": []}))
    results = carry_out_evacuation(sim, plan, "esx03")
    by_step = {r.step: r for r in results}
    assert by_step[stale.step].outcome == "skipped"
    last = results[-1]
    assert last.action == "enter-maintenance" and last.outcome == "skipped" and "did not succeed" in last.message
    assert sim.snapshot().host("esx03").state.value == "on"
    # a fresh plan then empties it, and maintenance follows
    plan = make_plan(sim.snapshot(), PlanOptions(evacuate=("esx03",), **FAST))
    results = carry_out_evacuation(sim, plan, "esx03")
    assert all(r.outcome == "success" for r in results)
    after = sim.snapshot()
    assert after.host("esx03").state.value == "maintenance"
    assert not [v for v in after.vms if v.host == "esx03"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(), st.integers(0, 6))
def test_evacuation_plans_empty_the_host_or_refuse(snapshot, pick):
    target = snapshot.hosts[pick % len(snapshot.hosts)].name
    options = PlanOptions(evacuate=(target,), time_limit_s=0.5)
    plan = make_plan(snapshot, options)
    registered = {v.name for v in snapshot.vms if v.host == target}
    if plan.status == "infeasible":
        assert plan.moves == [] and plan.power == [] and plan.conflicts
        return
    assert {m.vm for m in plan.moves} == registered, "every VM on the host moves, and only those"
    assert all(m.source == target and m.reason == "evacuate" for m in plan.moves)
    c = build_cluster(snapshot, options)
    by_rules = rule_allowed(c)
    place, loads = c.place.copy(), c.host_loads(c.place)
    for m in plan.moves:
        v, t = c.vm_index(m.vm), c.host_index(m.target)
        assert c.on[t] and by_rules[v, t]
        loads[place[v]] -= c.load[v]
        loads[t] += c.load[v]
        place[v] = t
        assert np.all(loads[t] <= c.bound[t] + 1e-6), "capacity holds at every step"
        for g in c.anti:
            if g.mandatory and v in g.vms:
                assert t not in place[[o for o in g.vms if o != v]], "mandatory anti-affinity holds at every step"
    expected = [] if snapshot.host(target).state.value == "maintenance" else [(target, "enter-maintenance")]
    assert [(p.host, p.action) for p in plan.power] == expected
    assert all(p.step > len(plan.moves) for p in plan.power)
