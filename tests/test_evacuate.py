"""Maintenance-mode evacuation: the engine plan, refusals naming the rule, the command line, --execute."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.config import SimConfig
from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute.cluster import build_cluster
from balancer.engine.compute.hoststate import rule_allowed
from balancer.app.evacuate import carry_out_evacuation
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


def test_evacuate_execute_on_the_simulated_cluster(tmp_path):
    # run where its journal and the simulator's state file may be written
    proc = run_cli("evacuate", "esx03", "--execute", "--format", "json", cwd=tmp_path)
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
        for g in c.apart:
            if g.mandatory and v in g.vms:
                assert t not in place[[o for o in g.vms if o != v]], "mandatory anti-affinity holds at every step"
    expected = [] if snapshot.host(target).state.value == "maintenance" else [(target, "enter-maintenance")]
    assert [(p.host, p.action) for p in plan.power] == expected
    assert all(p.step > len(plan.moves) for p in plan.power)


# --- a rule already broken by VMs that may not move blocks nothing else ------------------------------

def broken_elsewhere(automation="default"):
    # web-spread is broken on c (w1 and w2 share it); a is evacuated: w1, w2 stay where they are
    hosts = [host("a"), host("b"), host("c"), host("d")]
    vms = [vm("a1", "a"), vm("a2", "a"), vm("w1", "c", automation=automation), vm("w2", "c", automation=automation),
           vm("w3", "b"), vm("b1", "b", cpu=3000), vm("d1", "d", cpu=500)]
    rules = [{"name": "web-spread", "type": "vm-anti-affinity", "vms": ["w1", "w2", "w3"]}]
    return snap(hosts, vms, rules)


def test_evacuation_goes_ahead_when_a_rule_is_broken_elsewhere(tmp_path):
    data = broken_elsewhere()
    s = parse_snapshot(data)
    options = PlanOptions(evacuate=("a",), **FAST)
    plan = make_plan(s, options)
    assert plan.status == "ok", plan.conflicts
    assert sorted(m.vm for m in plan.moves) == ["a1", "a2"]
    assert [p.action for p in plan.power] == ["enter-maintenance"]
    assert "web-spread" in {v.name for v in plan.violations_after}
    assert any("rule web-spread stays broken" in n and "w1, w2" in n and "only the VMs on a move" in n
               for n in plan.notes)
    replay(s, plan, options)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    proc = run_cli("evacuate", "a", "--snapshot", str(path))
    assert proc.returncode == 0, proc.stderr
    # evacuating the host of the broken rule repairs it on the way
    plan = make_plan(s, PlanOptions(evacuate=("c",), **FAST))
    assert plan.status == "ok" and "web-spread" not in {v.name for v in plan.violations_after}


def test_evacuation_refused_for_the_evacuated_vms_names_the_real_rule():
    # w3 leaves b: with w1, w2 pinned on c and a, d full, it has nowhere to go; the refusal is about w3's room
    hosts = [host("b"), host("c"), host("d")]
    vms = [vm("w1", "c"), vm("w2", "c"), vm("w3", "b"), vm("d1", "d")]
    rules = [{"name": "web-spread", "type": "vm-anti-affinity", "vms": ["w1", "w2", "w3", "d1"]}]
    plan = make_plan(parse_snapshot(snap(hosts, vms, rules)), PlanOptions(evacuate=("b",), **FAST))
    assert plan.status == "infeasible" and plan.moves == []
    assert any("web-spread" in c for c in plan.conflicts)


def test_recommend_with_manual_vms_breaking_a_rule_balances_the_rest(tmp_path):
    data = broken_elsewhere("manual")
    data["vms"] += [vm(f"x{i}", "d", cpu=2500) for i in range(3)]  # d is hot: balancing has work to do
    s = parse_snapshot(data)
    options = PlanOptions(**FAST)
    plan = make_plan(s, options)
    assert plan.status == "ok" and plan.moves and plan.conflicts == []
    assert not {"w1", "w2"} & {m.vm for m in plan.moves}
    assert any("rule web-spread stays broken" in n and "manual DRS override" in n for n in plan.notes)
    assert "web-spread" in {v.name for v in plan.violations_after}
    replay(s, plan, options)  # capacity and the rest of web-spread hold at every step
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    proc = run_cli("recommend", "--snapshot", str(path), "--format", "json", "--time-limit", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"


def test_infeasible_plan_imbalance_is_rounded():
    data = snap([host("a"), host("b")], [vm("w1", "a", cpu=1234), vm("w2", "b", cpu=777), vm("w3", "b")],
                [{"name": "spread", "type": "vm-anti-affinity", "vms": ["w1", "w2", "w3"]}])
    plan = make_plan(parse_snapshot(data), PlanOptions(**FAST))
    assert plan.status == "infeasible"
    for value in (plan.imbalance.before.cpu, plan.imbalance.before.mem, plan.imbalance.after.cpu):
        assert value == round(value, 6)


def test_max_moves_0_with_a_broken_rule_says_why_nothing_moves():
    s = parse_snapshot(broken_elsewhere())
    plan = make_plan(s, PlanOptions(max_moves=0, max_repair_moves=0, **FAST))
    assert plan.status == "ok" and plan.moves == []
    assert plan.notes[0] == "max repair moves 0: nothing is repaired"
    # the balancing cap alone does not stop a repair
    plan = make_plan(s, PlanOptions(max_moves=0, **FAST))
    assert plan.moves and all(m.mandatory for m in plan.moves)


@st.composite
def pinned_violations(draw):
    n_hosts = draw(st.integers(3, 6))
    hosts = [host(f"h{i}", cpu=20000, mem=20000) for i in range(n_hosts)]
    vms = [vm(f"p{j}", "h0", cpu=draw(st.integers(0, 3000)), automation=draw(st.sampled_from(["manual", "disabled"])))
           for j in range(draw(st.integers(2, 3)))]  # pinned, breaking "stuck" on h0
    stuck = [v["name"] for v in vms]
    if draw(st.booleans()):
        vms.append(vm("s-free", f"h{draw(st.integers(0, n_hosts - 1))}", cpu=1000))
        stuck.append("s-free")
    free = []
    for j in range(draw(st.integers(2, 14))):
        vms.append(vm(f"f{j}", f"h{draw(st.integers(0, n_hosts - 1))}", cpu=draw(st.integers(0, 5000)),
                      mem=draw(st.integers(0, 3000))))
        free.append(f"f{j}")
    # "apart" holds at the start (its VMs on distinct hosts) and must hold at every step
    apart = draw(st.lists(st.sampled_from(free), min_size=2, max_size=min(3, n_hosts - 1), unique=True))
    for i, name in enumerate(apart):
        next(v for v in vms if v["name"] == name)["host"] = f"h{i + 1}"
    rules = [{"name": "stuck", "type": "vm-anti-affinity", "vms": stuck},
             {"name": "apart", "type": "vm-anti-affinity", "vms": apart}]
    evacuate = draw(st.sampled_from([(), (f"h{n_hosts - 1}",)]))
    return snap(hosts, vms, rules), evacuate, draw(st.integers(3, 5))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pinned_violations())
def test_pinned_violations_do_not_block_the_plan(case):
    data, evacuate, threshold = case
    s = parse_snapshot(data)
    options = PlanOptions(evacuate=evacuate, threshold=threshold, time_limit_s=0.5)
    plan = make_plan(s, options)
    assert plan.status == "ok", plan.conflicts
    c, place, _ = replay(s, plan, options)  # capacity and mandatory anti-affinity at every step
    broken = {v.name for v in plan.violations_after if v.mandatory and v.kind == "rule"}
    assert broken == {"stuck"}, "only the rule the pinned VMs break stays broken"
    assert any(n.startswith("rule stuck stays broken") for n in plan.notes)
    assert not {m.vm for m in plan.moves if m.vm.startswith("p")}, "pinned VMs stay"
    if evacuate:
        assert not any(place[v] == c.host_index(evacuate[0]) for v in range(c.n_vms))


def test_exit_maintenance_brings_an_evacuated_host_back(tmp_path):
    from helpers import run_cli

    assert run_cli("exit-maintenance", "esx02", cwd=tmp_path).returncode == 2  # on: not in maintenance
    assert run_cli("evacuate", "esx02", "--execute", cwd=tmp_path).returncode == 0
    snap = tmp_path / "s.json"
    assert run_cli("snapshot", "--out", str(snap), cwd=tmp_path).returncode == 0
    assert {h["name"]: h["state"] for h in json.loads(snap.read_text())["hosts"]}["esx02"] == "maintenance"
    r = run_cli("exit-maintenance", "esx02", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [(x["subject"], x["action"], x["outcome"]) for x in json.loads(r.stdout)] == \
        [("esx02", "exit-maintenance", "success")]
    assert run_cli("snapshot", "--out", str(snap), cwd=tmp_path).returncode == 0
    assert {h["name"]: h["state"] for h in json.loads(snap.read_text())["hosts"]}["esx02"] == "on"
    history = json.loads(run_cli("history", "--format", "json", cwd=tmp_path).stdout)
    assert [c["kind"] for c in history][-2:] == ["evacuate", "exit-maintenance"]
    bad = run_cli("exit-maintenance", "esx99", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "esx99" in bad.stderr
