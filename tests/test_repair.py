"""Mandatory means mandatory: the order of obligations, repairs that finish, caps and the clock.

Regression cases for each way the promise failed, and hypothesis properties over generated clusters
of 8-200 hosts built to have a repair (benchmarks/instances.py, shape ``displace``: a valid
placement with VMs moved away from it, so moving them back is a repair).
"""

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.compute import optimizer
from balancer.engine.compute.cluster import build_cluster
from balancer.engine.compute.repair import repair
from balancer.engine.options import DpmOptions
from balancer.snapshot import parse_snapshot
from helpers import ROOT, run_cli

sys.path.insert(0, str(ROOT / "benchmarks"))
from instances import repair_instance  # noqa: E402

from test_engine_properties import _hard, _replay, assert_order_of_obligations  # noqa: E402

PROPS = settings(max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 12)), deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def host(name, cpu=10000, mem=10000, state="on"):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": state}


def vm(name, h, cpu=1000, mem=500, **kw):
    return {"name": name, "host": h, "vcpus": 8, "mem_mb": 4096, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def snap(hosts, vms, rules=(), **groups):
    return parse_snapshot({"version": 1, "cluster": "t", "hosts": hosts, "vms": vms, "rules": list(rules), **groups})


def hard(plan):
    return [v for v in plan.violations_after if v.mandatory]


# --- several hosts over their limit at threshold 1 ---------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_threshold_one_mends_every_host_over_its_limit(seed):
    # 32 hosts / 800 VMs, a quarter of the hosts pushed above their limit by a load spike, plenty of room elsewhere
    data, _ = repair_instance(32, 800, seed=seed, anti_share=0.34, over_share=0.25)
    s = parse_snapshot(data)
    plan = make_plan(s, PlanOptions(threshold=1))
    over = {v.name for v in plan.violations_before if v.kind in ("capacity", "headroom")}
    assert len(over) >= 5, "the instance has several hosts over their limit"
    assert hard(plan) == [], plan.notes
    assert plan.moves and all(m.mandatory for m in plan.moves)
    _replay(s, plan, PlanOptions(threshold=1))


def test_a_large_cluster_is_mended_at_threshold_one():
    data, _ = repair_instance(1000, 3000, seed=4, anti_share=0.34, over_share=0.1)
    plan = make_plan(parse_snapshot(data), PlanOptions(threshold=1))
    assert len([v for v in plan.violations_before if v.mandatory]) >= 30
    assert hard(plan) == [], plan.notes[:3]


# --- a mandatory rule that holds is never broken -----------------------------------------------------

def _pair_on_a_hot_host():
    # h0 is at 95 % (above its 90 % limit); only the mandatory affinity pair a1+a2 may move, and no
    # other host has room for both: relieving h0 would split the pair
    hosts = [host("h0"), host("h1"), host("h2")]
    vms = [vm("a1", "h0", cpu=1500), vm("a2", "h0", cpu=1500),
           vm("p1", "h0", cpu=6500, automation="manual"),
           vm("b1", "h1", cpu=7000, automation="manual"), vm("c1", "h2", cpu=7000, automation="manual")]
    rules = [{"name": "pair", "type": "vm-affinity", "vms": ["a1", "a2"]}]
    return snap(hosts, vms, rules)


@pytest.mark.parametrize("planner", ["cp-sat", "greedy"])
@pytest.mark.parametrize("threshold,max_moves", [(1, None), (5, 1), (5, 0), (3, 2)])
def test_the_headroom_limit_never_breaks_a_mandatory_affinity_rule(planner, threshold, max_moves):
    s = _pair_on_a_hot_host()
    plan = make_plan(s, PlanOptions(threshold=threshold, max_moves=max_moves, planner=planner))
    assert "pair" not in {v.name for v in plan.violations_after}
    assert {m.vm for m in plan.moves} <= set(), "no move can relieve h0 without splitting the pair"
    assert [v.kind for v in plan.violations_after] == ["headroom"]
    assert any(n.startswith("still broken after this plan: h0: CPU 95 %") for n in plan.notes), plan.notes


def test_the_pair_moves_together_when_a_host_has_room_for_both():
    s = _pair_on_a_hot_host()
    data = s.model_dump(mode="json")
    data["hosts"].append(host("h3"))
    plan = make_plan(parse_snapshot(data), PlanOptions(threshold=1))
    assert sorted((m.vm, m.target) for m in plan.moves) == [("a1", "h3"), ("a2", "h3")]
    assert plan.violations_after == []


def test_a_hard_repair_may_use_a_host_above_its_headroom_limit():
    # w1 and w2 must run apart; h1 has room for w2 only above its 90 % limit (up to 95 %): mending the
    # rule comes before our headroom, so w2 goes there and the plan shows h1 above its limit
    s = snap([host("h0"), host("h1")], [vm("w1", "h0", cpu=3000), vm("w2", "h0", cpu=3000),
                                        vm("f", "h1", cpu=6500, automation="manual")],
             [{"name": "apart", "type": "vm-anti-affinity", "vms": ["w1", "w2"]}])
    plan = make_plan(s, PlanOptions(threshold=1))
    assert [(m.vm, m.target, m.reason) for m in plan.moves] == [("w2", "h1", "rule")] or \
        [(m.vm, m.target, m.reason) for m in plan.moves] == [("w1", "h1", "rule")]
    assert [(v.kind, v.name) for v in plan.violations_after] == [("headroom", "h1")]
    _replay(s, plan, PlanOptions(threshold=1))


# --- caps: repairs are not balancing moves ----------------------------------------------------------

def _spike_with_standby_hosts():
    hosts = [host(f"h{i}") for i in range(4)] + [host(f"s{i}", state="standby") for i in range(6)]
    vms = [vm(f"v{i}-{j}", f"h{i}", cpu=1300, mem=400) for i in range(4) for j in range(10)]
    return snap(hosts, vms)  # each host that is on at 130 % of its CPU


def test_dpm_spike_repairs_are_not_cut_by_the_balancing_cap():
    s = _spike_with_standby_hosts()
    plan = make_plan(s, PlanOptions(threshold=3, max_moves=8, dpm=DpmOptions(max_standby=None)))
    assert [p.action for p in plan.power][:1] == ["power-on"]
    mandatory = [m for m in plan.moves if m.mandatory]
    assert len(mandatory) > 8, "more repairs than the balancing cap"
    assert len([m for m in plan.moves if not m.mandatory]) <= 8
    assert not [v for v in plan.violations_after if v.kind in ("capacity", "headroom")], plan.notes


def test_the_repair_cap_stops_repairs_and_says_so():
    s = _spike_with_standby_hosts()
    plan = make_plan(s, PlanOptions(threshold=1, max_repair_moves=3, dpm=DpmOptions(max_standby=None)))
    assert len([m for m in plan.moves if m.mandatory]) == 3
    assert any("the repair cap (max_repair_moves 3) stopped the repairs" in n for n in plan.notes), plan.notes


def test_recommend_max_repair_moves_from_the_command_line(tmp_path):
    data, _ = repair_instance(16, 200, seed=5, over_share=0.25)
    path = tmp_path / "s.json"
    path.write_text(__import__("json").dumps(data))
    proc = run_cli("recommend", "--snapshot", str(path), "--threshold", "1", "--max-repair-moves", "2",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    plan = __import__("json").loads(proc.stdout)
    assert len(plan["moves"]) == 2 and any("max_repair_moves 2" in n for n in plan["notes"])
    proc = run_cli("recommend", "--snapshot", str(path), "--threshold", "1", "--max-moves", "0", "--format", "json")
    plan = __import__("json").loads(proc.stdout)
    assert plan["moves"] and not [v for v in plan["violations_after"] if v["kind"] in ("capacity", "headroom")]


# --- the clock is a safety net, not what decides -----------------------------------------------------

def test_a_frozen_wall_clock_gives_the_same_plan(monkeypatch):
    data, _ = repair_instance(48, 1500, seed=6, anti_share=0.34, over_share=0.15)
    s = parse_snapshot(data)
    options = PlanOptions(threshold=4, max_moves=30)
    normal = make_plan(s, options).to_json_dict()
    monkeypatch.setattr(optimizer.time, "monotonic", lambda: 1000.0)  # a machine so busy the clock never moves
    assert make_plan(s, options).to_json_dict() == normal
    assert not any("wall clock" in n for n in normal["notes"])


def test_a_plan_the_wall_clock_ended_says_so(monkeypatch):
    data, _ = repair_instance(48, 1500, seed=6, anti_share=0.34, over_share=0.15)
    ticks = iter(range(0, 10**9, 1000))  # every reading a thousand seconds later: far slower than the reference
    monkeypatch.setattr(optimizer.time, "monotonic", lambda: float(next(ticks)))
    plan = make_plan(parse_snapshot(data), PlanOptions(threshold=4, max_moves=30))
    assert any(n.startswith("the wall clock (10 x the 3 s time limit), not the work budget, ended the search")
               for n in plan.notes), plan.notes
    assert_order_of_obligations(plan)


# --- properties over clusters built to have a repair ------------------------------------------------

@st.composite
def repairable(draw):
    n_hosts = draw(st.integers(8, 200))
    per_host = draw(st.integers(3, 8))
    anti = draw(st.sampled_from([0.0, 1 / 3, 2 / 3, 1.0]))
    over = draw(st.sampled_from([0.05, 0.15, 0.3]))
    maintenance = draw(st.integers(0, 2))
    data, witness = repair_instance(n_hosts, n_hosts * per_host, seed=draw(st.integers(0, 10**6)), anti_share=anti,
                                    over_share=over, shape="displace", maintenance=maintenance,
                                    fill=draw(st.sampled_from([0.45, 0.6, 0.7])),
                                    affinity_share=draw(st.sampled_from([0.0, 0.1, 0.3])))
    core_mhz = draw(st.sampled_from([None, 2000, 2600]))
    if core_mhz:  # hosts that give their cores: the repair prefers hosts with room for a VM's burst
        for h in data["hosts"]:
            h["cpu_cores"] = max(1, round(h["cpu_capacity_mhz"] / core_mhz))
    return parse_snapshot(data), witness


def _witness_is_valid(s, witness):
    """The generator's promise: the witness placement breaks no hard obligation and no limit."""
    c = build_cluster(s, PlanOptions())
    place = np.array([c.host_index(witness[n]) for n in c.vm_names])
    loads = c.host_loads(place)
    assert np.all(loads <= c.limit + 1e-6) and c.on[place[c.powered]].all()


@PROPS
@given(repairable())
def test_threshold_one_mends_every_violation_when_a_repair_exists(case):
    s, witness = case
    _witness_is_valid(s, witness)
    options = PlanOptions(threshold=1)
    plan = make_plan(s, options)
    assert plan.status == "ok", plan.conflicts
    assert [v for v in plan.violations_after if v.mandatory] == [], plan.notes[:3]
    _replay(s, plan, options)


@PROPS
@given(repairable(), st.integers(2, 5), st.one_of(st.none(), st.integers(0, 40)), st.booleans(),
       st.sampled_from(["cp-sat", "greedy"]))
def test_no_plan_breaks_a_hard_obligation_that_held(case, threshold, max_moves, dpm, planner):
    s, _ = case
    options = PlanOptions(threshold=threshold, max_moves=max_moves, planner=planner,
                          dpm=DpmOptions(max_standby=None) if dpm else None)
    plan = make_plan(s, options)
    assert_order_of_obligations(plan)
    assert [v for v in plan.violations_after if v.mandatory] == [], plan.notes[:3]
    _replay(s, plan, options)
    if max_moves is not None:
        assert len([m for m in plan.moves if not m.mandatory and m.reason != "dpm"]) <= max_moves


@PROPS
@given(repairable(), st.integers(0, 10**6))
def test_evacuating_a_host_breaks_no_hard_obligation_that_held(case, pick):
    s, _ = case
    on = [h.name for h in s.hosts if h.state.value == "on"]
    options = PlanOptions(evacuate=(on[pick % len(on)],))
    plan = make_plan(s, options)
    if plan.status == "infeasible":
        assert plan.moves == [] and plan.conflicts
        return
    assert _hard(plan.violations_after) <= _hard(plan.violations_before)
    _replay(s, plan, options)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(repairable(), st.integers(1, 5))
def test_the_same_cluster_gives_the_same_plan(case, threshold):
    s, _ = case
    options = PlanOptions(threshold=threshold, max_moves=25)
    assert make_plan(s, options).to_json_dict() == make_plan(s, options).to_json_dict()


def test_the_repair_alone_keeps_every_hard_obligation_that_holds():
    data, _ = repair_instance(64, 640, seed=8, anti_share=1.0, over_share=0.3, shape="displace", maintenance=2)
    s = parse_snapshot(data)
    c = build_cluster(s, PlanOptions())
    rep = repair(c)
    for g in c.apart:
        if len(np.unique(c.place[g.vms])) == len(g.vms):
            assert len(np.unique(rep.place[g.vms])) == len(g.vms)
    assert np.all(c.host_loads(rep.place) <= np.maximum(c.cap, c.host_loads(c.place)) + 1e-6)


# --- found by a review: caps, labels, apply and notes -----------------------------------------------

def _h(name, state="on"):
    return host(name, state=state)


def _v(name, h, cpu, **kw):
    return {"name": name, "host": h, "vcpus": 4, "mem_mb": 100, "cpu_demand_mhz": cpu, "mem_demand_mb": 100, **kw}


@pytest.mark.parametrize("planner", ["cp-sat", "greedy"])
@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_the_repair_cap_holds_at_every_threshold(planner, threshold):
    from balancer.checks.replay import check_plan_steps

    pair = snap([_h("h0"), _h("h1")], [_v("a", "h0", 2000), _v("b", "h0", 2000)],
                [{"name": "ab", "type": "vm-anti-affinity", "vms": ["a", "b"]}])
    hot = snap([_h(f"h{i}") for i in range(3)] + [_h("h3")],
               [_v(f"v{i}{j}", f"h{i}", 2300) for i in range(3) for j in range(5)])  # three hosts at 115 %
    for s, cap in ((pair, 0), (hot, 0), (hot, 1)):
        options = PlanOptions(threshold=threshold, planner=planner, max_repair_moves=cap)
        plan = make_plan(s, options)
        assert len([m for m in plan.moves if m.mandatory]) <= cap, plan.moves
        if cap == 0:
            assert plan.moves == [] or all(not m.mandatory for m in plan.moves)
        check_plan_steps(s, plan, options)  # apply accepts what recommend made with the same caps


def test_a_vm_evicted_to_make_room_for_a_repair_is_a_repair_at_every_threshold():
    from balancer.checks.replay import check_plan_steps

    # d1 must run on h1 or h2 (mandatory), h1 is above capacity: f leaves h2 to make room for d1
    s = snap([_h(f"h{i}") for i in range(1, 5)],
             [_v("d1", "h1", 6000), _v("d2", "h1", 5000), _v("f", "h2", 6000), _v("g", "h2", 2000),
              _v("q", "h3", 1000), _v("r", "h4", 1000)],
             [{"name": "db-rack", "type": "vm-host", "vm_group": "db", "host_group": "rack", "affine": True,
               "mandatory": True}], vm_groups={"db": ["d1", "d2", "g"]}, host_groups={"rack": ["h1", "h2"]})
    for threshold in (1, 3, 5):
        options = PlanOptions(threshold=threshold, max_moves=0)
        plan = make_plan(s, options)
        assert [(m.vm, m.reason) for m in plan.moves if m.vm == "f"] == [("f", "capacity")]
        assert all(m.mandatory for m in plan.moves)
        check_plan_steps(s, plan, options)


def test_a_repair_evicts_within_the_limit_before_it_stretches_a_host():
    # d1 must run on h1, which has p (65 %): p moves to h2 first, then d1 comes; no host above 90 %
    s = snap([_h("h1"), _h("h2"), _h("h3")], [_v("d1", "h3", 3000), _v("p", "h1", 6500), _v("o", "h2", 1000)],
             [{"name": "db-rack", "type": "vm-host", "vm_group": "db", "host_group": "rack", "affine": True,
               "mandatory": True}], vm_groups={"db": ["d1"]}, host_groups={"rack": ["h1"]})
    plan = make_plan(s, PlanOptions(threshold=1))
    assert [(m.vm, m.target) for m in plan.moves] == [("p", "h2"), ("d1", "h1")]
    assert plan.violations_after == []


def test_apply_accepts_a_hard_repair_that_fills_a_host_to_its_capacity():
    from balancer.checks.replay import check_plan_steps

    s = snap([_h("h1"), _h("h2")], [_v("a", "h1", 3000), _v("b", "h1", 3000), _v("z", "h2", 7000)],
             [{"name": "spread", "type": "vm-anti-affinity", "vms": ["a", "b"]}])
    plan = make_plan(s, PlanOptions(threshold=1))
    assert len(plan.moves) == 1 and plan.moves[0].target == "h2" and plan.moves[0].mandatory
    check_plan_steps(s, plan, PlanOptions(threshold=1))
    # the stretched host's note names what keeps it above its limit: the rule, not a want of room
    assert any("h2:" in n and "rule spread" in n for n in plan.notes), plan.notes


def test_a_note_on_an_affinity_group_gives_the_group_s_size():
    s = snap([_h("h1"), _h("h2")], [_v("a", "h1", 5000), _v("b", "h1", 5000), _v("c", "h1", 1500),
                                    _v("z", "h2", 4500)],
             [{"name": "pair", "type": "vm-affinity", "vms": ["a", "b"]}])
    data = s.model_dump(mode="json")
    data["vms"][2]["automation"] = "manual"
    plan = make_plan(parse_snapshot(data), PlanOptions(threshold=1))
    assert plan.moves == []
    assert any("the smallest, a, b, needs 10000 MHz" in n for n in plan.notes), plan.notes


def test_no_vmotion_is_planned_off_a_disconnected_host():
    s = snap([_h("h1", state="disconnected"), _h("h2"), _h("h3")], [_v("a", "h1", 2000), _v("b", "h2", 1000)])
    for threshold in (1, 3):
        plan = make_plan(s, PlanOptions(threshold=threshold))
        assert plan.moves == [] and plan.status == "ok"
        assert any("its host is disconnected, and vCenter moves no VM off it" in n for n in plan.notes), plan.notes
        assert [v.detail for v in plan.violations_after] == ["1 powered-on VM on a host that is disconnected"]


def test_an_affinity_rule_a_member_that_may_not_move_keeps_broken_does_not_stop_the_plan():
    # q sits on a disconnected host: w cannot join it, so the rule stays broken, named; h2's headroom
    # is still mended
    s = snap([_h("h1", state="disconnected"), _h("h2"), _h("h3")],
             [_v("q", "h1", 100), _v("w", "h2", 1000), _v("hog", "h2", 8300)],
             [{"name": "tog", "type": "vm-affinity", "vms": ["q", "w"]}])
    plan = make_plan(s, PlanOptions(threshold=1))
    assert plan.status == "ok" and plan.moves
    assert not [v for v in plan.violations_after if v.kind == "headroom"]
    assert any(n.startswith("rule tog stays broken: q on h1 may not move (its host is disconnected)") for n in plan.notes)


def test_a_maintenance_evacuation_moves_an_affinity_pair_together_even_beyond_the_limit():
    from balancer.checks.replay import check_plan_steps

    # both members of a pair stand on a host in maintenance; h0 has room for both only above its limit
    s = snap([{"name": "h0", "cpu_capacity_mhz": 40000, "mem_capacity_mb": 32768},
              {"name": "h1", "cpu_capacity_mhz": 10000, "mem_capacity_mb": 32768, "state": "maintenance"}],
             [{"name": "v0", "host": "h1", "vcpus": 4, "mem_mb": 16384, "cpu_demand_mhz": 4220, "mem_demand_mb": 15566},
              {"name": "v2", "host": "h1", "vcpus": 2, "mem_mb": 16384, "cpu_demand_mhz": 11999, "mem_demand_mb": 12238},
              {"name": "v1", "host": "h0", "vcpus": 4, "mem_mb": 2048, "cpu_demand_mhz": 2921, "mem_demand_mb": 1937}],
             [{"name": "r0", "type": "vm-affinity", "vms": ["v2", "v0"]}])
    for planner in ("cp-sat", "greedy"):
        plan = make_plan(s, PlanOptions(planner=planner))
        assert sorted(m.vm for m in plan.moves) == ["v0", "v2"] and all(m.target == "h0" for m in plan.moves)
        assert "r0" not in {v.name for v in plan.violations_after}
        check_plan_steps(s, plan, PlanOptions(planner=planner))
